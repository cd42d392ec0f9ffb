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

#include "saelab/core/error.hpp"
#include "support/support.hpp"

namespace saelab::test {

namespace fs = std::filesystem;

// Runs a shell command, its output going to `log`; throws with the log's tail when it fails.
inline void run_command(const std::string& cmd, const fs::path& log) {
  const std::string full = cmd + " > '" + log.string() + "' 2>&1";
  const int rc = std::system(full.c_str());
  if (rc != 0) {
    std::string text = read_bytes(log);
    if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
    throw std::runtime_error("command failed (status " + std::to_string(rc) + "): " + cmd + "\n" + text);
  }
}

inline std::string oracle_script() {
  return (fs::path(SAELAB_SOURCE_DIR) / "tests" / "gpt2" / "hf_oracle.py").string();
}

}  // namespace saelab::test
