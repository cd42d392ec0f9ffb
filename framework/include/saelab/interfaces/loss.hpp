#pragma once
// Loss: one term of the training objective. A YAML file composes several (mse + l1, mse + auxk...).
// Each term returns a scalar that is already multiplied by its own coefficient and schedule; the
// trainer sums the terms and logs each under its name.
#include <cstdint>
#include <string>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

struct SAELAB_API TrainProgress {
  std::int64_t step = 0;
  std::int64_t total_steps = 1;
  double fraction() const { return total_steps > 0 ? double(step) / double(total_steps) : 1.0; }
};

struct SAELAB_API LossContext {
  const torch::Tensor& x;  // [batch, d_in] input (after input scaling)
  const SaeOutput& out;    // forward of `sae` on x
  SaeArchitecture& sae;
  const torch::Tensor& dead_mask;  // [d_sae] bool: latents dead over the tracking window
  TrainProgress progress;
};

class SAELAB_API Loss {
 public:
  static constexpr const char* kKind = "loss";
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  virtual torch::Tensor compute(const LossContext& ctx) = 0;  // scalar, ≥ 0
};

}  // namespace saelab
