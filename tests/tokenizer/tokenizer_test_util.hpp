#pragma once
// Shared helpers for the tokenizer tests: where the fetched data lives, and the Python oracle.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/support.hpp"
#include "tokenizer/tokenizer.hpp"

namespace saelab::test {

std::filesystem::path source_dir();
std::filesystem::path gpt2_vocab_json();  // data/gpt2-tokenizer/encoder.json
std::filesystem::path gpt2_merges_txt();  // data/gpt2-tokenizer/vocab.bpe
std::filesystem::path sotu_dir();         // data/corpus/sotu

// Empty when the data is present, else a message telling how to fetch it.
std::string missing_data_message();
// The GPT-2 tokenizer, loaded once. Call only after missing_data_message() is empty.
const gpt2::Tokenizer& gpt2_tokenizer();

std::vector<std::filesystem::path> sotu_files();  // sorted by name

// Empty when SAELAB_ORACLE_PYTHON is set, else the setup instructions.
std::string missing_oracle_message();

// Runs tests/tokenizer/oracle_tokenize.py `mode` over `inputs` (modes in that script) and returns
// the ids of each input. Fails the test (returns empty) if the oracle does not run.
std::vector<std::vector<std::int32_t>> run_oracle(const std::string& mode,
                                                  const std::vector<std::filesystem::path>& inputs,
                                                  const std::filesystem::path& work);

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
