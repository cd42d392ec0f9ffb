// SmolLM2-135M's tokenizer read from its GGUF file (text/gguf_tokenizer.hpp) against Hugging Face
// tokenizers built from the same vocabulary and merges, read by the Python gguf package
// (gguf_vocab_files.py), with SmolLM2's pre-tokenizer and the file's control tokens as special
// tokens: the whole bundled corpus and adversarial.txt must give identical ids. Also the file's
// facts (BOS, EOS, add_bos_token) and ids known from the model's documentation.
#include <fstream>

#include <gtest/gtest.h>

#include "saelab/formats/gguf.hpp"
#include "saelab/text/gguf_tokenizer.hpp"
#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

namespace fs = std::filesystem;

fs::path smollm2_file() {
  return source_dir() / "data" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

const text::GgufTokenizer& smollm2_tokenizer() {
  static const text::GgufTokenizer tok = text::load_gguf_tokenizer(gguf::File(smollm2_file()));
  return tok;
}

TEST(GgufTokenizer, FileFactsAndKnownIds) {
  ASSERT_TRUE(fs::exists(smollm2_file())) << smollm2_file() << " is missing: run scripts/setup.sh";
  const auto& t = smollm2_tokenizer();
  EXPECT_EQ(t.tokenizer.vocab_size(), 49152);
  EXPECT_EQ(t.bos, 1);
  EXPECT_EQ(t.eos, 2);
  EXPECT_EQ(t.unk, 0);
  EXPECT_FALSE(t.add_bos);
  EXPECT_EQ(t.tokenizer.special_ids().size(), 17u);
  EXPECT_EQ(t.tokenizer.pretokenizer(), text::PreTokenizerKind::SmolLM);
  // From the model's documentation (and transformers on this file).
  const std::vector<std::int32_t> want = {19556, 905, 28, 451, 314, 3511, 308, 34519, 34, 30};
  EXPECT_EQ(t.tokenizer.encode("Hello world, this is SmolLM2.", true), want);
  EXPECT_EQ(t.tokenizer.encode("<|im_start|>user", true).front(), 1);
  EXPECT_EQ(t.tokenizer.decode(t.tokenizer.encode("Ünïcödé 12345 <|im_end|>", true)),
            "Ünïcödé 12345 <|im_end|>");
}

TEST(GgufTokenizer, WholeCorpusMatchesHuggingFaceTokenizers) {
  SAELAB_REQUIRE_GPT2_DATA();  // the corpus
  SAELAB_REQUIRE_ORACLE();
  ASSERT_TRUE(fs::exists(smollm2_file())) << smollm2_file() << " is missing: run scripts/setup.sh";
  const fs::path work = scratch_dir("gguf-vocab");
  const auto r = run_command(cat(shell_quote(std::getenv("SAELAB_ORACLE_PYTHON")), " ",
                                 shell_quote((source_dir() / "tests/tokenizer/gguf_vocab_files.py").string()),
                                 " ", shell_quote(smollm2_file().string()), " ", shell_quote(work.string())));
  std::printf("%s", r.output.c_str());
  ASSERT_EQ(r.exit_code, 0);
  std::vector<std::string> specials;
  std::ifstream in(work / "specials.txt");
  for (std::string line; std::getline(in, line);) specials.push_back(line);
  EXPECT_EQ(specials.size(), 17u);
  std::vector<fs::path> inputs = sotu_files();
  inputs.push_back(source_dir() / "tests/tokenizer/adversarial.txt");
  const OracleVocab vocab{work / "vocab.json", work / "merges.txt"};
  const OracleTotals t =
      compare_with_oracle(smollm2_tokenizer().tokenizer, true, "smollm", inputs, "gguf", specials, &vocab);
  EXPECT_GT(t.ours, 2'000'000u);
}

}  // namespace
}  // namespace saelab::test
