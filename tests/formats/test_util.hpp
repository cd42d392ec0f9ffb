#pragma once
// Shared helpers for the format tests: temp dirs, crafted files, error-message checks, the oracle.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <initializer_list>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <torch/types.h>

#include "support/support.hpp"

namespace saelab::test {

// u64 little-endian length (header.size() unless overridden) + header + data.
std::string craft(const std::string& header, const std::string& data,
                  std::optional<std::uint64_t> length = std::nullopt);

// Runs fn, expects it to throw an exception of type E whose message contains every needle.
// Prints the message so the log shows what a user would see.
template <class E>
void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception, none was thrown";
  } catch (const E& e) {
    std::string msg = e.what();
    std::cout << "  error: " << msg << "\n";
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\":\n  " << msg;
  }
}

// Deterministic test values shared with the Python oracle scripts (same formula there):
// base_i = (37 i) mod 101, mapped per dtype (see oracle_safetensors.py).
torch::Tensor pattern(torch::Dtype dtype, std::vector<std::int64_t> shape);
// f32 values whose bits matter: inf, -inf, nan, -0, smallest denormal, max.
torch::Tensor special_f32();

// The oracle interpreter from SAELAB_ORACLE_PYTHON, or a failure telling how to set it up.
std::optional<std::string> oracle_python_or_fail();
// Runs "<python> tests/formats/<script> args..." and echoes its output.
CommandResult run_oracle(const std::string& python, const std::string& script,
                         const std::vector<std::string>& args);

// Same bits (NaNs included), same dtype, same shape.
bool bitwise_equal(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace saelab::test

#define SAELAB_REQUIRE_ORACLE(var)                          \
  auto var##_opt = ::saelab::test::oracle_python_or_fail(); \
  if (!var##_opt) return;                                   \
  const std::string var = *var##_opt
