#include "support.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace saelab::test {

fs::path scratch_dir(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? cat(info->test_suite_name(), ".", info->name()) : cat("process-", ::getpid());
  if (!suffix.empty()) name += "." + suffix;
  const fs::path dir = fs::path(SAELAB_BINARY_DIR) / "test-tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TempDir::TempDir(const std::string& suffix) : path_(scratch_dir(suffix)) {}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(cat("test: cannot open '", p.string(), "' for reading"));
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(cat("test: cannot open '", p.string(), "' for writing"));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes())
    throw std::runtime_error(cat("test: comparing tensors of shapes ", a.sizes(), " and ", b.sizes()));
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string required_env(const char* name, const std::string& how_to_set) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw std::runtime_error(cat(name, " is not set. ", how_to_set));
  return v;
}

std::string oracle_python() {
  return required_env("SAELAB_ORACLE_PYTHON",
                      "This test compares saelab with the Python reference implementations: run "
                      "`scripts/setup.sh --oracle` and export "
                      "SAELAB_ORACLE_PYTHON=<repo>/.venv-oracle/bin/python (scripts/test.sh sets it).");
}

std::string saelens_python() {
  return required_env("SAELAB_SAELENS_PYTHON",
                      "This test compares saelab with SAELens: run `scripts/setup.sh --oracle` and export "
                      "SAELAB_SAELENS_PYTHON=<repo>/.venv-saelens/bin/python (scripts/test.sh sets it).");
}

}  // namespace saelab::test
