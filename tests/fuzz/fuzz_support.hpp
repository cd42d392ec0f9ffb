#pragma once
// What every fuzz target shares: the one rule they check, and turning fuzzer bytes into files.
//
// The rule: untrusted input either works or throws a saelab::Error with a message. Anything else
// is a finding and aborts, so libFuzzer (and the corpus replay tests) report it with the input:
//   - a crash, a sanitizer report, or a hang (libFuzzer's -timeout);
//   - an exception that is not a saelab::Error (std::out_of_range from a library, c10::Error from
//     LibTorch): the user would see a message that does not say which file or key is at fault;
//   - a saelab::Error with an empty message.
//
// Multi-file inputs (a cfg.json with its safetensors, a checkpoint directory) are one byte string
// cut at each occurrence of kPartSeparator; seeds are made that way by tests/fuzz/make_seeds.py.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "saelab/core/error.hpp"

namespace saelab::fuzz {

inline constexpr std::string_view kPartSeparator = "\n--saelab-fuzz-part--\n";

// Runs fn; returns normally when it succeeds or throws a saelab::Error with a message. Anything
// else prints what was thrown, naming `target`, and aborts.
template <class Fn>
void expect_clear_error(const char* target, Fn&& fn);

// The input split at kPartSeparator, always at least one part.
std::vector<std::string> split_parts(const std::uint8_t* data, std::size_t size);

// A directory of this process's own (under $SAELAB_FUZZ_TMP, /dev/shm or the temp directory),
// emptied by each call, so a target writes its files into a fresh place for every input.
const std::filesystem::path& fresh_dir();

// A directory of this process's own that fresh_dir() never empties, for a target's set-up (a
// model, an SAE) made once in LLVMFuzzerInitialize.
const std::filesystem::path& setup_dir();

void write_file(const std::filesystem::path& path, std::string_view bytes);

// Warnings off, one LibTorch thread: every target's LLVMFuzzerInitialize calls this.
void quiet_process();

// Prints the exception and aborts: the one place a finding is reported.
[[noreturn]] void report_finding(const char* target, const char* kind, const char* what);
// A saelab::Error's message must say something.
void check_message(const char* target, const char* what);

template <class Fn>
void expect_clear_error(const char* target, Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    check_message(target, e.what());
  } catch (const std::exception& e) {
    report_finding(target, "an exception that is not a saelab::Error", e.what());
  } catch (...) {
    report_finding(target, "a non-std exception", "(no message)");
  }
}

}  // namespace saelab::fuzz

// Defines LLVMFuzzerTestOneInput for one target: the body runs under expect_clear_error.
//   SAELAB_FUZZ_TARGET("safetensors") { ... uses data, size ... }
#define SAELAB_FUZZ_TARGET(name)                                                      \
  static void saelab_fuzz_one(const std::uint8_t* data, std::size_t size);            \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    ::saelab::fuzz::expect_clear_error(name, [&] { saelab_fuzz_one(data, size); });   \
    return 0;                                                                         \
  }                                                                                   \
  static void saelab_fuzz_one(const std::uint8_t* data, std::size_t size)
