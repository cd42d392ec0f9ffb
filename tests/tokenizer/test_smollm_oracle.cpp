// The in-memory path with SmolLM's pre-tokenizer against Hugging Face tokenizers: both are built
// from GPT-2's vocabulary and merges (read by each side on its own), HF as models.BPE with
// Sequence([Digits(individual_digits=True), ByteLevel(use_regex=True)]), the pre-tokenizer of
// SmolLM2's tokenizer.json (oracle_tokenize.py smollm). This checks the digit splitting and the
// in-memory construction independently of any GGUF file: the whole bundled corpus,
// adversarial.txt whole and line by line, digit-heavy strings, random text, and several special
// tokens with shared prefixes must give identical ids.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

namespace fs = std::filesystem;

// Writes each string to its own file under `dir` and returns the paths.
std::vector<fs::path> write_inputs(const fs::path& dir, const std::vector<std::string>& texts) {
  std::vector<fs::path> paths;
  for (const std::string& t : texts) {
    paths.push_back(dir / (std::to_string(paths.size()) + ".txt"));
    write_bytes(paths.back(), t);
  }
  return paths;
}

// Each line of adversarial.txt on its own (so a line's end is the end of the input), without and
// with its newline, plus strings built around numbers.
std::vector<std::string> digit_heavy_strings() {
  std::vector<std::string> out;
  const std::string adversarial = read_bytes(source_dir() / "tests/tokenizer/adversarial.txt");
  for (std::size_t pos = 0; pos < adversarial.size();) {
    std::size_t end = adversarial.find('\n', pos);
    end = end == std::string::npos ? adversarial.size() : end + 1;
    const std::string line = adversarial.substr(pos, end - pos);
    if (line.size() > 1) out.push_back(line.substr(0, line.size() - (line.back() == '\n')));
    out.push_back(line);
    pos = end;
  }
  for (const char* s : {"  1",
                        " 1",
                        " 12 345",
                        "x1y",
                        "\xd9\xa1\xd9\xa2\xd9\xa3",
                        "\xe2\x85\xab",
                        "\xc2\xbd",
                        "3.14",
                        "\n\n2026",
                        "1",
                        "12",
                        "  12  ",
                        "1 ",
                        "1  ",
                        " \n1",
                        "\t1\t",
                        "a 1 b",
                        "\xe3\x80\x80"
                        "1",
                        "\xc2\xa0"
                        "1",
                        "1\xff"
                        "2",
                        "\xff 1",
                        "1'sx",
                        "'1",
                        "x\xc2\xb2y",
                        "\xe2\x91\xa0\xe2\x91\xa1",
                        "2026-01-31 12:30:59",
                        "v2.0.1",
                        "$1,000,000.00"})
    out.emplace_back(s);
  out.push_back(std::string(300, ' ') + "7");
  return out;
}

TEST(SmolLMTokenizerOracle, WholeCorpusAdversarialLinesAndDigits) {
  SAELAB_REQUIRE_GPT2_DATA();
  SAELAB_REQUIRE_ORACLE();
  std::vector<fs::path> inputs = sotu_files();
  ASSERT_EQ(inputs.size(), 233u) << "the bundled corpus is incomplete; run scripts/fetch-data.sh";
  inputs.push_back(source_dir() / "tests/tokenizer/adversarial.txt");
  for (const fs::path& p : write_inputs(scratch_dir("smollm-inputs"), digit_heavy_strings()))
    inputs.push_back(p);
  const OracleTotals t = compare_with_oracle(gpt2_smollm_tokenizer(), false, "smollm", inputs, "smollm");
  EXPECT_GT(t.ours, 2'000'000u) << "the corpus should be millions of tokens";
  // SmolLM's splitting must differ from GPT-2's on this corpus (full of numbers); equal counts
  // would mean the digit step did nothing.
  std::size_t gpt2_total = 0;
  for (const fs::path& p : inputs) gpt2_total += gpt2_tokenizer().encode(read_bytes(p)).size();
  EXPECT_GT(t.ours, gpt2_total);
}

// Random text over an alphabet heavy in numbers of every category, whitespace and stray bytes.
TEST(SmolLMTokenizerOracle, RandomDigitHeavyText) {
  SAELAB_REQUIRE_GPT2_DATA();
  SAELAB_REQUIRE_ORACLE();
  const std::vector<std::string> atoms = {"a",
                                          "Z",
                                          " ",
                                          "  ",
                                          "\n",
                                          "\t",
                                          "'s",
                                          "1",
                                          "9",
                                          "0",
                                          ".",
                                          ",",
                                          "-",
                                          "\xd9\xa3",
                                          "\xe2\x85\xab",
                                          "\xc2\xbd",
                                          "\xc2\xb2",
                                          "\xef\xbc\x91",
                                          "\xe0\xa5\xa8",
                                          "\xe2\x91\xa0",
                                          "\xc2\xa0",
                                          "\xe3\x80\x80",
                                          "\xc3\xa9",
                                          "\xe4\xb8\x80",
                                          "\xf0\x9f\x98\x80",
                                          "\xff",
                                          "\xe2\x82",
                                          "<|endoftext|>"};
  std::mt19937 rng(20260131);
  std::vector<std::string> texts;
  for (int i = 0; i < 150; ++i) {
    std::string s;
    const int n = std::uniform_int_distribution<int>(1, 300)(rng);
    for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
    texts.push_back(s);
  }
  texts.push_back(std::string(20000, '7'));
  std::string mixed;
  for (int i = 0; i < 5000; ++i) mixed += (i % 3 ? " " : "  ") + std::to_string(i);
  texts.push_back(mixed);
  compare_with_oracle(gpt2_smollm_tokenizer(), false, "smollm",
                      write_inputs(scratch_dir("smollm-random"), texts), "smollm-random");
}

// Several special tokens, some prefixes of others ("Un", "Unit", "United"), and all frequent in
// the corpus: HF matches them leftmost-longest before pre-tokenizing the text between.
TEST(SmolLMTokenizerOracle, SpecialTokensLeftmostLongest) {
  SAELAB_REQUIRE_GPT2_DATA();
  SAELAB_REQUIRE_ORACLE();
  const std::vector<std::string> specials = {"<|endoftext|>", "Un", "Unit", "United", "States", "1"};
  text::BpeVocabulary v = gpt2_vocabulary(text::PreTokenizerKind::SmolLM);
  v.special_ids.clear();
  for (const std::string& s : specials) {
    const auto it = std::find(v.tokens.begin(), v.tokens.end(), s);
    ASSERT_NE(it, v.tokens.end()) << s;
    v.special_ids.push_back(static_cast<std::int32_t>(it - v.tokens.begin()));
  }
  const auto tok = text::BpeTokenizer::from_vocabulary(v);
  std::vector<fs::path> inputs = sotu_files();
  inputs.push_back(source_dir() / "tests/tokenizer/adversarial.txt");
  for (const fs::path& p :
       write_inputs(scratch_dir("smollm-special-inputs"),
                    {"UnitedUnitUn<|endoftext|>Unite", "xUnitedStatesx  United  ", "Un1ted 1  1United",
                     "<|endoftext|><|endoftext|>", "  <|endoftext|>  1", "UnUnitUnited"})) {
    inputs.push_back(p);
  }
  compare_with_oracle(tok, true, "smollm", inputs, "smollm-special", specials);
}

}  // namespace
}  // namespace saelab::test
