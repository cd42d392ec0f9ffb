#pragma once
// What every test area needs: scratch directories, reading and writing files, catching saelab
// errors, running commands, comparing tensors and reading the oracle's environment variables.
// Area-specific helpers (fixtures, oracles, planted data) stay in each area's own util file.
#include <cstdint>
#include <filesystem>
#include <string>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"

namespace saelab::test {

namespace fs = std::filesystem;

// A fresh, empty directory <build>/test-tmp/<suite>.<test>[.<suffix>], named after the running
// test. ctest runs every test in its own process, so no two running tests share one; the pid is
// added outside a test (a helper process, a static initialiser).
fs::path scratch_dir(const std::string& suffix = "");

// A scratch directory (as above) removed with its contents when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& suffix = "");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Whole-file reads and writes in binary mode. Both throw std::runtime_error naming the file when
// it cannot be opened, so a test never compares against an empty string by accident.
std::string read_bytes(const fs::path& p);
void write_bytes(const fs::path& p, const std::string& bytes);  // creates parent directories

// The message of the saelab::Error that fn throws, or "(no error)" when it returns normally.
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

// max |a - b| in double precision; throws when the shapes differ.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);

// 'text' quoted for /bin/sh.
std::string shell_quote(const std::string& s);

struct CommandResult {
  int exit_code = -1;  // -1 when the command did not exit normally
  std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing both streams.
CommandResult run_command(const std::string& cmd);

// The value of an environment variable the test cannot run without; throws std::runtime_error
// with `how_to_set` when it is unset or empty (tests that need the oracle fail, never skip).
std::string required_env(const char* name, const std::string& how_to_set);

// SAELAB_ORACLE_PYTHON: the interpreter of the .venv-oracle venv (scripts/setup.sh --oracle).
std::string oracle_python();
// SAELAB_SAELENS_PYTHON: the interpreter of the .venv-saelens venv (scripts/setup.sh --oracle).
std::string saelens_python();

}  // namespace saelab::test
