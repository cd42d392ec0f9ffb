#pragma once
// What every benchmark shares: best-of-N timing, the machine's sgemm rate measured in the same
// run, and running a Python reference that prints one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/registry.hpp"

namespace saelab::bench {

// Best wall time of `iters` calls after one warm-up call (allocator and BLAS buffers).
template <class F>
double best_seconds(int iters, F&& fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// torch::mm at 2048^3 in GFLOP/s, at the current thread count.
inline double sgemm_gflops(int iters) {
  const std::int64_t n = 2048;
  const auto a = at::randn({n, n}), b = at::randn({n, n});
  auto c = at::empty({n, n});
  const double s = best_seconds(iters, [&] { at::mm_out(c, a, b); });
  return 2.0 * n * n * n / s / 1e9;
}

// A plugin's default options with `values` set, as a YAML file would give them.
inline Options plugin_options(const Registry& reg, const char* kind, const char* name,
                              const std::map<std::string, OptionValue>& values, const char* who) {
  const auto* f = reg.find(kind, name);
  if (!f) throw Error(cat("plugin ", kind, "/", name, " is not built; build with -DSAELAB_BUILD_BENCH=ON"));
  Options o = default_options(f->schema, kind);
  for (const auto& [k, v] : values) o.set_given(k, v, SourceLoc{who, 0, 0});
  return o;
}

// Runs `cmd` with its stdout sent to `out` and parses the JSON there; null when it fails.
inline nlohmann::json run_json(const std::string& cmd, const std::filesystem::path& out) {
  std::filesystem::create_directories(out.parent_path());
  const std::string full = cmd + " > '" + out.string() + "'";
  if (std::system(full.c_str()) != 0) {
    std::printf("reference benchmark failed: %s\n", cmd.c_str());
    return nullptr;
  }
  std::FILE* f = std::fopen(out.c_str(), "r");
  if (!f) return nullptr;
  std::string text;
  char buf[4096];
  while (std::size_t k = std::fread(buf, 1, sizeof buf, f)) text.append(buf, k);
  std::fclose(f);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace saelab::bench
