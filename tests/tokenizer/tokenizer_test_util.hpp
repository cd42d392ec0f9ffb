#pragma once
// Shared helpers for the tokenizer tests: where the fetched data lives, and the Python oracle.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/support.hpp"
#include "saelab/text/bpe_tokenizer.hpp"

namespace saelab::test {

std::filesystem::path source_dir();
std::filesystem::path gpt2_vocab_json();  // data/gpt2-tokenizer/encoder.json
std::filesystem::path gpt2_merges_txt();  // data/gpt2-tokenizer/vocab.bpe
std::filesystem::path sotu_dir();         // data/corpus/sotu

// Empty when the data is present, else a message telling how to fetch it.
std::string missing_data_message();
// The GPT-2 tokenizer, loaded once. Call only after missing_data_message() is empty.
const text::BpeTokenizer& gpt2_tokenizer();
// GPT-2's two files read here, independently of saelab's loader, into the lists an in-memory
// vocabulary (a GGUF's) holds: tokens by id, merges by rank, "<|endoftext|>" the one special.
text::BpeVocabulary gpt2_vocabulary(text::PreTokenizerKind kind);
// from_vocabulary(gpt2_vocabulary(SmolLM)), built once: GPT-2's vocabulary, SmolLM's pre-tokenizer.
const text::BpeTokenizer& gpt2_smollm_tokenizer();

// Raw bytes written in GPT-2's byte-to-unicode alphabet (computed from its definition).
std::string to_alphabet(const std::string& bytes);

// "first difference at token i: saelab ... | HF ...", the tokens around i shown as bytes.
std::string describe_first_difference(const text::BpeTokenizer& tok, const std::vector<std::int32_t>& ours,
                                      const std::vector<std::int32_t>& theirs);

std::vector<std::filesystem::path> sotu_files();  // sorted by name

// Empty when SAELAB_ORACLE_PYTHON is set, else the setup instructions.
std::string missing_oracle_message();

// Runs tests/tokenizer/oracle_tokenize.py `mode` over `inputs` (modes in that script) and returns
// the ids of each input. `specials` are the special tokens of the smollm modes. Fails the test
// (returns empty) if the oracle does not run.
// The vocabulary files the oracle builds its tokenizer from (default: GPT-2's bundled ones).
struct OracleVocab {
  std::filesystem::path vocab_json, merges_txt;
};
std::vector<std::vector<std::int32_t>> run_oracle(const std::string& mode,
                                                  const std::vector<std::filesystem::path>& inputs,
                                                  const std::filesystem::path& work,
                                                  const std::vector<std::string>& specials = {},
                                                  const OracleVocab* vocab = nullptr);

// Encodes every input with `tok` (allow_special as given) and with the oracle in `mode` (with
// `specials`), fails the test for each input whose ids differ, prints the totals and returns them.
struct OracleTotals {
  std::size_t inputs = 0, bytes = 0, ours = 0, theirs = 0, differing = 0;
};
OracleTotals compare_with_oracle(const text::BpeTokenizer& tok, bool allow_special, const std::string& mode,
                                 const std::vector<std::filesystem::path>& inputs, const std::string& label,
                                 const std::vector<std::string>& specials = {},
                                 const OracleVocab* vocab = nullptr);

}  // namespace saelab::test

// Fails the current test (not skip) when the fetched data is missing.
#define SAELAB_REQUIRE_GPT2_DATA()                                   \
  do {                                                               \
    const std::string why_ = ::saelab::test::missing_data_message(); \
    if (!why_.empty()) GTEST_FAIL() << why_;                         \
  } while (0)

#define SAELAB_REQUIRE_ORACLE()                                        \
  do {                                                                 \
    const std::string why_ = ::saelab::test::missing_oracle_message(); \
    if (!why_.empty()) GTEST_FAIL() << why_;                           \
  } while (0)
