#pragma once
// Helpers of the steer tests: the small SAE on the real SmolLM2-135M that the steer_run fixture
// trains (smollm2_small.yaml), opened once per process, and its reference statistics.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/stages/inspect.hpp"

namespace saelab::test {

inline const std::filesystem::path& steer_run_dir() {
  static const std::filesystem::path p(SAELAB_STEER_RUN);
  if (!std::filesystem::exists(p / "sae" / "cfg.json"))
    throw std::runtime_error(cat("the steer test run is missing at ", p.string(),
                                 "; ctest makes it (fixture steer_run_setup), or run: saelab run "
                                 "tests/steer/smollm2_small.yaml --out ",
                                 p.string()));
  return p;
}

inline Inspection& steer_run() {
  static Inspection in = open_inspection(steer_run_dir(), {});
  return in;
}

// Every latent's max over the run's stored rows (no quantiles kept).
inline const LatentReference& steer_reference() {
  static LatentReference ref = inspection_reference(steer_run(), {}, 1000000, {});
  return ref;
}

inline torch::Tensor tokens_of(const std::vector<std::int32_t>& ids) {
  return torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
}

}  // namespace saelab::test
