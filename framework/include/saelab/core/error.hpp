#pragma once
// Errors thrown anywhere in saelab, plugins included. Library code never calls exit(): it throws,
// and main() picks the exit code from the type (ConfigError/UsageError -> 2, everything else -> 1).
#include <sstream>
#include <stdexcept>
#include <string>

#include "saelab/core/export.hpp"

namespace saelab {

// Concatenates its arguments with operator<< so messages read like sentences at the call site.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

class SAELAB_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad configuration: a YAML file, a --set override or an option value. Exit code 2.
class SAELAB_API ConfigError : public Error {
 public:
  using Error::Error;
};

// Bad command line. Exit code 2.
class SAELAB_API UsageError : public Error {
 public:
  using Error::Error;
};

// Untrusted input (a model file, store, checkpoint, corpus) is malformed. Exit code 1.
class SAELAB_API FormatError : public Error {
 public:
  using Error::Error;
};

// The user stopped a stage (SIGINT/SIGTERM) after it saved what it had. Exit code 1. A sweep stops
// on it rather than going on to its next run.
class SAELAB_API Interrupted : public Error {
 public:
  using Error::Error;
};

// A plugin could not be loaded or registered. Exit code 1.
class SAELAB_API PluginError : public Error {
 public:
  using Error::Error;
};

}  // namespace saelab

#define SAELAB_CHECK(cond, ErrorType, ...)                    \
  do {                                                        \
    if (!(cond)) throw ErrorType(::saelab::cat(__VA_ARGS__)); \
  } while (0)
