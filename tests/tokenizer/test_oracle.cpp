// saelab's tokenizer against Hugging Face GPT2TokenizerFast built from the same two files
// (oracle_tokenize.py through SAELAB_ORACLE_PYTHON): the whole bundled corpus, adversarial.txt,
// random bytes and long single pieces must give identical ids.
#include <random>

#include <gtest/gtest.h>

#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<std::int32_t>;

// Encodes every input with GPT-2's tokenizer and the oracle and compares; prints the totals.
void compare_with_oracle(const std::string& mode, const std::vector<fs::path>& inputs,
                         const std::string& label) {
  test::compare_with_oracle(gpt2_tokenizer(), mode == "special", mode, inputs, label);
}

TEST(Gpt2TokenizerOracle, WholeCorpusAndAdversarialText) {
  SAELAB_REQUIRE_GPT2_DATA();
  SAELAB_REQUIRE_ORACLE();
  std::vector<fs::path> inputs = sotu_files();
  ASSERT_EQ(inputs.size(), 233u) << "the bundled corpus is incomplete; run scripts/fetch-data.sh";
  inputs.push_back(source_dir() / "tests/tokenizer/adversarial.txt");
  compare_with_oracle("text", inputs, "corpus");
}

TEST(Gpt2TokenizerOracle, AdversarialWithSpecialTokens) {
  SAELAB_REQUIRE_GPT2_DATA();
  SAELAB_REQUIRE_ORACLE();
  compare_with_oracle("special", {source_dir() / "tests/tokenizer/adversarial.txt"}, "special");
}

// Random bytes (invalid UTF-8 included: the oracle finds invalid bytes with Python's decoder),
// random valid text over a mixed alphabet, and long single pieces that take the heap merge path.
TEST(Gpt2TokenizerOracle, RandomBytesAndLongPieces) {
  SAELAB_REQUIRE_GPT2_DATA();
  SAELAB_REQUIRE_ORACLE();
  const fs::path dir = scratch_dir("oracle-random-inputs");
  std::mt19937 rng(20240531);
  std::vector<fs::path> inputs;
  auto add = [&](const std::string& data) {
    inputs.push_back(dir / (std::to_string(inputs.size()) + ".bin"));
    write_bytes(inputs.back(), data);
  };
  for (int i = 0; i < 40; ++i) {  // raw bytes, mostly invalid UTF-8
    std::string s(std::uniform_int_distribution<int>(1, 400)(rng), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    add(s);
  }
  const std::vector<std::string> atoms = {"a",
                                          "e",
                                          "t",
                                          " ",
                                          "  ",
                                          "\n",
                                          "\t",
                                          "'s",
                                          "'S",
                                          "1",
                                          "9",
                                          ".",
                                          ",",
                                          "!",
                                          "\xc3\xa9",
                                          "\xe4\xb8\x80",
                                          "\xf0\x9f\x98\x80",
                                          "\xcc\x81",
                                          "\xc2\xa0",
                                          "\xe3\x80\x80",
                                          "\xff",
                                          "\xe2\x82"};
  for (int i = 0; i < 40; ++i) {  // text-like: mostly valid, with a few stray bytes
    std::string s;
    const int n = std::uniform_int_distribution<int>(1, 600)(rng);
    for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
    add(s);
  }
  const std::string letters = "etaoinshrdlucmfwypvbgkqjxz";
  for (std::size_t len : {65u, 100u, 257u, 1000u, 4000u, 20000u}) {  // one piece each
    std::string s(len, 'a');
    for (char& c : s) c = letters[rng() % (rng() % 2 ? 6 : letters.size())];
    add(s);
    add(" " + s);
  }
  add(std::string(5000, ' ') + "x");
  add(std::string(3000, '\n'));
  add(std::string(7000, '7'));
  add(std::string(4001, 'a'));
  compare_with_oracle("text", inputs, "random");
}

}  // namespace
}  // namespace saelab::test
