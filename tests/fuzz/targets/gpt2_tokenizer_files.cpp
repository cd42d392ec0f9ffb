// GPT-2's tokenizer files: encoder.json and vocab.bpe, then a round trip through what they built
// (from_files requires all 256 single bytes, so decode(encode(s)) == s must hold for any bytes).
// Input: encoder.json PART vocab.bpe PART text to encode
#include "../fuzz_support.hpp"
#include "saelab/text/bpe_tokenizer.hpp"

SAELAB_FUZZ_TARGET("gpt2_tokenizer_files") {
  const auto parts = saelab::fuzz::split_parts(data, size);
  const auto dir = saelab::fuzz::fresh_dir();
  saelab::fuzz::write_file(dir / "encoder.json", parts[0]);
  saelab::fuzz::write_file(dir / "vocab.bpe", parts.size() > 1 ? parts[1] : std::string());
  const auto tok = saelab::text::BpeTokenizer::from_files(dir / "encoder.json", dir / "vocab.bpe");
  const std::string text =
      parts.size() > 2 ? parts[2] : std::string("Hello, world! \xff\xfe 12 <|endoftext|>");
  for (const bool special : {false, true}) {
    if (tok.decode(tok.encode(text, special)) != text)
      saelab::fuzz::report_finding("gpt2_tokenizer_files", "decode(encode(text)) != text", text.c_str());
  }
}
