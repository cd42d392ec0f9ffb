// GPT-2 tokenizer throughput on the bundled corpus: saelab vs Hugging Face tokenizers, both
// single-threaded, measured in the same run (HF through SAELAB_ORACLE_PYTHON).
//   bench_tokenizer [--repeat N]
// Prints MB/s for each and the ratio saelab / HF (the target is >= 1.0).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/text/bpe_tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs oracle_tokenize.py bench over `files`; returns HF's MB/s or a negative value.
double hf_mb_per_s(const fs::path& root, const std::vector<fs::path>& files, std::size_t& tokens) {
  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  if (!py || !*py) {
    std::fprintf(stderr,
                 "SAELAB_ORACLE_PYTHON is not set: run scripts/setup.sh --oracle and export "
                 "SAELAB_ORACLE_PYTHON=$PWD/.venv-oracle/bin/python to compare with HF\n");
    return -1;
  }
  const fs::path list = fs::temp_directory_path() / "saelab-bench-tokenizer-inputs.txt";
  {
    std::ofstream l(list);
    for (const fs::path& f : files) l << f.string() << "\n";
  }
  const fs::path tok = root / "data/gpt2-tokenizer";
  const std::string cmd = quote(py) + " " + quote((root / "tests/tokenizer/oracle_tokenize.py").string()) +
                          " bench " + quote((tok / "encoder.json").string()) + " " +
                          quote((tok / "vocab.bpe").string()) + " " + quote(list.string()) + " " +
                          quote(fs::temp_directory_path().string()) + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  const int rc = pclose(pipe);
  fs::remove(list);
  if (rc != 0) {
    std::fprintf(stderr, "the HF oracle failed (status %d): %s\n", rc, cmd.c_str());
    return -1;
  }
  const auto j = nlohmann::json::parse(out.substr(out.rfind('{')));
  tokens = j.at("tokens").get<std::size_t>();
  return j.at("mb_per_s").get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
  const fs::path root = SAELAB_SOURCE_DIR;
  const fs::path tok_dir = root / "data/gpt2-tokenizer", corpus = root / "data/corpus/sotu";
  if (!fs::exists(tok_dir / "encoder.json") || !fs::exists(corpus)) {
    std::fprintf(stderr, "the offline data is missing: run scripts/fetch-data.sh\n");
    return 1;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(corpus))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> texts;
  std::size_t bytes = 0;
  for (const fs::path& f : files) bytes += (texts.emplace_back(read_bytes(f))).size();

  using clock = std::chrono::steady_clock;
  const auto t_load = clock::now();
  const auto tok = saelab::text::BpeTokenizer::from_files(tok_dir / "encoder.json", tok_dir / "vocab.bpe");
  const double load_ms = std::chrono::duration<double, std::milli>(clock::now() - t_load).count();
  double best = 1e30;
  std::size_t tokens = 0;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = clock::now();
    tokens = 0;
    for (const std::string& t : texts) tokens += tok.encode(t).size();
    best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
  }
  const double ours = bytes / best / 1e6;
  std::printf("corpus: %zu files, %zu bytes; tokenizer load %.0f ms\n", files.size(), bytes, load_ms);
  std::printf("saelab:        %8.2f MB/s  (%zu tokens, best of %d: %.3f s)\n", ours, tokens, repeat, best);
  std::size_t hf_tokens = 0;
  const double hf = hf_mb_per_s(root, files, hf_tokens);
  if (hf <= 0) return 1;
  std::printf("HF tokenizers: %8.2f MB/s  (%zu tokens, single-threaded, best of 2)\n", hf, hf_tokens);
  std::printf("ratio saelab/HF: %.2fx  (target >= 1.0)%s\n", ours / hf,
              hf_tokens == tokens ? "" : "  WARNING: token counts differ");
  return 0;
}
