#pragma once
// Logging: messages go to stderr and, during a run, to <run_dir>/saelab.log as well.
#include <filesystem>
#include <string>

#include "saelab/core/error.hpp"
#include "saelab/core/export.hpp"

namespace saelab::log {

enum class Level { Debug, Info, Warn, Error };

SAELAB_API void write(Level level, const std::string& message);
// Also append every message to `file` (nullptr path: stop). Lines carry a UTC timestamp there.
SAELAB_API void set_file(const std::filesystem::path& file);
SAELAB_API void set_quiet(bool quiet);
// Starts every line with "[tag] " (e.g. "rank 1" in a data-parallel run); "" removes it.
SAELAB_API void set_tag(const std::string& tag);  // only warnings and errors on stderr
// Writes to the log file only (progress lines that the terminal shows as a bar).
SAELAB_API void file_only(const std::string& message);

template <class... A>
void info(const A&... a) {
  write(Level::Info, cat(a...));
}
template <class... A>
void warn(const A&... a) {
  write(Level::Warn, cat(a...));
}
template <class... A>
void error(const A&... a) {
  write(Level::Error, cat(a...));
}

}  // namespace saelab::log
