// Tokenization of arbitrary bytes with the two real tokenizers: GPT-2's files and SmolLM2's GGUF
// vocabulary (bpe_tokenizer.hpp, Encoding). Asserted:
//   GPT-2:   decode(encode(s)) == s for every byte string, with and without special tokens;
//   SmolLM2: the same once the bytes the vocabulary has no single-byte token for are removed.
// Both tokenizers must exist (scripts/fetch-data.sh); without them the target says so and aborts.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "../fuzz_support.hpp"
#include "saelab/formats/gguf.hpp"
#include "saelab/text/bpe_tokenizer.hpp"
#include "saelab/text/gguf_tokenizer.hpp"

#ifndef SAELAB_SOURCE_DIR
#error "SAELAB_SOURCE_DIR must name the source tree (its data/ holds the tokenizers)"
#endif

namespace {
struct Tokenizers {
  std::unique_ptr<saelab::text::BpeTokenizer> gpt2;
  std::unique_ptr<saelab::text::BpeTokenizer> smollm;
  bool smollm_has_byte[256] = {};
};

Tokenizers& tokenizers() {
  static Tokenizers t;
  return t;
}

void load_tokenizers() {
  const std::filesystem::path data = std::filesystem::path(SAELAB_SOURCE_DIR) / "data";
  auto& t = tokenizers();
  t.gpt2 = std::make_unique<saelab::text::BpeTokenizer>(saelab::text::BpeTokenizer::from_files(
      data / "gpt2-tokenizer" / "encoder.json", data / "gpt2-tokenizer" / "vocab.bpe"));
  const saelab::gguf::File model(data / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf");
  t.smollm = std::make_unique<saelab::text::BpeTokenizer>(saelab::text::load_gguf_tokenizer(model).tokenizer);
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    t.smollm_has_byte[b] = t.smollm->decode(t.smollm->encode(one)) == one;
  }
}

void check_round_trip(const saelab::text::BpeTokenizer& tok, const std::string& text, const std::string& want,
                      const char* which) {
  for (const bool special : {false, true}) {
    const auto ids = tok.encode(text, special);
    if (tok.decode(ids) != want)
      saelab::fuzz::report_finding("tokenize", which, "decode(encode(text)) differs");
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  saelab::fuzz::quiet_process();
  try {
    load_tokenizers();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz target 'tokenize' needs data/ (run scripts/fetch-data.sh): %s\n", e.what());
    std::abort();
  }
  return 0;
}

SAELAB_FUZZ_TARGET("tokenize") {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto& t = tokenizers();
  check_round_trip(*t.gpt2, text, text, "GPT-2");
  std::string kept;
  for (const char c : text)
    if (t.smollm_has_byte[static_cast<unsigned char>(c)]) kept.push_back(c);
  check_round_trip(*t.smollm, text, kept, "SmolLM2");
}
