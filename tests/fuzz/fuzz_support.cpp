#include "fuzz_support.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <ATen/Parallel.h>

#include "saelab/core/log.hpp"

namespace saelab::fuzz {

std::vector<std::string> split_parts(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  std::size_t begin = 0;
  for (;;) {
    const auto at = all.find(kPartSeparator, begin);
    if (at == std::string_view::npos) break;
    parts.emplace_back(all.substr(begin, at - begin));
    begin = at + kPartSeparator.size();
  }
  parts.emplace_back(all.substr(begin));
  return parts;
}

namespace {
std::filesystem::path scratch_root() {
  if (const char* env = std::getenv("SAELAB_FUZZ_TMP"); env && *env) return env;
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec)) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}
// Removes a scratch directory when the process exits normally (libFuzzer's -max_total_time and
// the replay both end in exit()), so runs do not pile up in /dev/shm.
void remove_at_exit(const std::filesystem::path& dir) {
  static std::vector<std::filesystem::path> dirs;
  if (dirs.empty())
    std::atexit([] {
      std::error_code ec;
      for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
    });
  dirs.push_back(dir);
}
// <scratch root>/<prefix><pid>, removed at exit.
std::filesystem::path own_dir(const char* prefix) {
  auto d = scratch_root() / (prefix + std::to_string(static_cast<long>(::getpid())));
  remove_at_exit(d);
  return d;
}

}  // namespace

const std::filesystem::path& fresh_dir() {
  static const std::filesystem::path dir = own_dir("saelab-fuzz-");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  return dir;
}

const std::filesystem::path& setup_dir() {
  static const std::filesystem::path dir = own_dir("saelab-fuzz-setup-");
  std::filesystem::create_directories(dir);
  return dir;
}

void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write the scratch file %s\n", path.c_str());
    std::abort();
  }
}

void report_finding(const char* target, const char* kind, const char* what) {
  std::fprintf(stderr, "\nfuzz target '%s': FINDING: %s: %s\n", target, kind, what);
  std::abort();
}

void check_message(const char* target, const char* what) {
  if (what == nullptr || *what == '\0') report_finding(target, "a saelab::Error without a message", "");
}

void quiet_process() {
  log::set_quiet(true);
  at::set_num_threads(1);
}

}  // namespace saelab::fuzz

// The default LLVMFuzzerInitialize (targets with set-up define their own): quiet logs and one
// thread, so an input's cost is its own and warnings about bad files do not flood the fuzzer.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int*, char***) {
  saelab::fuzz::quiet_process();
  return 0;
}
