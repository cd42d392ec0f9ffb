#pragma once
// Running a trained SAE on raw model activations, as evaluation and reporting both do.
//
// An SAE trained on inputs scaled by `input_scale` (and not folded) takes x·s and returns x̂·s; the
// reconstruction handed back here is divided by s again, so callers always work in raw units.
// encode then decode is used (not forward), as SAELens's evaluation does.
#include <torch/types.h>

#include <string>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

struct SAELAB_API SaeApplied {
  torch::Tensor latents;         // [n, d_sae] on the SAE's device
  torch::Tensor reconstruction;  // [n, d_out] raw units, on x's device and dtype (d_out = d_in for an SAE)
};

// The device of a module's first parameter (CPU when it has none).
SAELAB_API torch::Device module_device(const torch::nn::Module& module);

// x [n, d_in] on any device. Throws Error naming both widths when x's width is not d_in, and when
// the SAE returns tensors of the wrong shape.
SAELAB_API SaeApplied apply_sae(SaeArchitecture& sae, const torch::Tensor& x, double input_scale);

// A transcoder on its input hook's raw activations x [n, d_in]: latents, and the prediction of the
// target hook [n, d_out] from forward() (its skip connection needs x). Saved transcoders have their
// scales folded in, so there is no input_scale.
SAELAB_API SaeApplied apply_transcoder(SaeArchitecture& sae, const torch::Tensor& x);

// Only the latents [n, d_sae] (reports and heatmaps need no reconstruction); same checks.
SAELAB_API torch::Tensor encode_sae(SaeArchitecture& sae, const torch::Tensor& x, double input_scale);

// Checks that `source` has `hook` and that its width is d_in. `who` starts the message
// ("evaluator standard"); the error lists the available hooks.
SAELAB_API void check_hook_width(const ActivationSource& source, const std::string& hook, std::int64_t d_in,
                                 const std::string& who);

// Puts a module in eval mode for a scope and restores its mode afterwards.
class SAELAB_API EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeGuard() { m_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

}  // namespace saelab
