#include "saelab/core/log.hpp"

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>

namespace saelab::log {
namespace {
std::mutex mu;
std::ofstream file_out;
bool quiet = false;
std::string tag;  // "[rank 1] " in a data-parallel run

std::string timestamp() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* prefix(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug: ";
    case Level::Info:
      return "";
    case Level::Warn:
      return "warning: ";
    case Level::Error:
      return "error: ";
  }
  return "";
}
}  // namespace

void write(Level level, const std::string& message) {
  std::lock_guard<std::mutex> lock(mu);
  if (!quiet || level >= Level::Warn) std::cerr << tag << prefix(level) << message << std::endl;
  if (file_out.is_open()) file_out << timestamp() << " " << tag << prefix(level) << message << std::endl;
}

void file_only(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu);
  if (file_out.is_open()) file_out << timestamp() << " " << message << std::endl;
}

void set_file(const std::filesystem::path& file) {
  std::lock_guard<std::mutex> lock(mu);
  if (file_out.is_open()) file_out.close();
  if (!file.empty()) {
    file_out.open(file, std::ios::app);
    if (!file_out) throw Error(cat("cannot open log file '", file.string(), "' for writing"));
  }
}

void set_tag(const std::string& t) {
  std::lock_guard<std::mutex> lock(mu);
  tag = t.empty() ? "" : "[" + t + "] ";
}

void set_quiet(bool q) {
  quiet = q;
}

}  // namespace saelab::log
