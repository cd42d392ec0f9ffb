#pragma once
// Helpers shared by the GPT-2 tests: scratch directories, running the Python oracle, comparisons.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "saelab/error.hpp"

namespace saelab::test {

namespace fs = std::filesystem;

// A fresh, empty directory under the build tree named after the running test.
inline fs::path scratch_dir(const std::string& suffix = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(SAELAB_BINARY_DIR) / "test-tmp" / "gpt2" /
                 (std::string(info->test_suite_name()) + "." + info->name() + suffix);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command, its output going to `log`; throws with the log's tail when it fails.
inline void run_command(const std::string& cmd, const fs::path& log) {
  const std::string full = cmd + " > '" + log.string() + "' 2>&1";
  const int rc = std::system(full.c_str());
  if (rc != 0) {
    std::string text = read_text(log);
    if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
    throw std::runtime_error("command failed (status " + std::to_string(rc) + "): " + cmd + "\n" + text);
  }
}

// The oracle's Python interpreter. Tests that need it fail (not skip) without it.
inline std::string oracle_python() {
  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  if (!py || !*py)
    throw std::runtime_error(
        "SAELAB_ORACLE_PYTHON is not set. The GPT-2 tests compare against Hugging Face "
        "transformers: run `scripts/setup.sh --oracle` and export "
        "SAELAB_ORACLE_PYTHON=<repo>/.venv-oracle/bin/python (CI sets it)");
  return py;
}

inline std::string oracle_script() {
  return (fs::path(SAELAB_SOURCE_DIR) / "tests" / "gpt2" / "hf_oracle.py").string();
}

// The message of the saelab::Error that fn throws, or "(no error)".
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) throw std::runtime_error("shape mismatch in comparison");
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace saelab::test
