#pragma once
// Adam, written out instead of torch::optim::Adam so that its state is plain named tensors that a
// checkpoint saves and restores exactly, and so that resampling can reset single latents' moments.
//
// Update (the PyTorch formula; on CPU one fused pass per parameter, equal to torch.optim.Adam to
// float rounding):
//   m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²
//   p ← p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API AdamConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class SAELAB_API Adam {
 public:
  // Parameters by name (e.g. from Module::named_parameters()); the tensors are updated in place.
  Adam(std::map<std::string, torch::Tensor> params, AdamConfig config);

  // One update with each parameter's current .grad(); parameters without a gradient are skipped
  // (their moments stay as they are, as in PyTorch).
  void step(double lr);
  std::int64_t steps_taken() const { return t_; }

  // Zeroes the moments of the slices `index` along `dim` of parameter `name` (resampling).
  void reset_slices(const std::string& name, std::int64_t dim, const torch::Tensor& index);

  // "adam.m.<name>", "adam.v.<name>" and "adam.t" ([1] int64), and the inverse. load_state checks
  // that every name and shape matches, naming `where` (the checkpoint file) in errors.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& tensors, const std::string& where);

  const AdamConfig& config() const { return config_; }

 private:
  struct Slot {
    torch::Tensor param, m, v;
  };
  std::map<std::string, Slot> slots_;
  AdamConfig config_;
  std::int64_t t_ = 0;
};

// Scales all gradients so that their global L2 norm is at most max_norm (no-op if max_norm ≤ 0).
// Returns the norm before clipping.
SAELAB_API double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace saelab
