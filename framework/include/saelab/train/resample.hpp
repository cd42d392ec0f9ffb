#pragma once
// Neuron resampling (Bricken et al. 2023, "Towards Monosemanticity", appendix "Neuron Resampling").
//
// For the latents that are dead:
//   1. score a sample of inputs by the SAE's squared reconstruction error ‖x − x̂‖², and draw one
//      input per dead latent with probability ∝ score² (without replacement);
//   2. SaeArchitecture::reinitialize_latents: decoder row W_dec[j, :] ← x / ‖x‖ (times the
//      architecture's decoder norm), encoder column W_enc[:, j] ← x / ‖x‖ · scale ·
//      mean_{alive i} ‖W_enc[:, i]‖ (scale 0.2), b_enc[j] ← 0;
//   3. the Adam moments of those slices (W_enc columns, W_dec rows, b_enc entries) ← 0.
// Weighted sampling without replacement streams over the inputs (Efraimidis–Spirakis keys
// log(u) / w), so the scored sample never has to fit in memory at once.
#include <cstdint>
#include <functional>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/train/adam.hpp"

namespace saelab {

struct SAELAB_API ResampleResult {
  std::int64_t resampled = 0;  // dead latents given new directions
  torch::Tensor latents;       // [resampled] int64 their indices
  std::int64_t inputs_scored = 0;
  double mean_alive_encoder_norm = 0.0;
};

// `next_inputs` returns the next scaled batch [rows, d_in]; it is called until `inputs` rows were
// scored. Requires parameters named W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in].
// Dead latents beyond the number of inputs scored keep their weights (at most one input each).
SAELAB_API ResampleResult resample_dead_latents(SaeArchitecture& sae, Adam& adam,
                                                const torch::Tensor& dead_mask,
                                                const std::function<torch::Tensor()>& next_inputs,
                                                std::int64_t inputs, double encoder_scale,
                                                at::Generator& gen);

}  // namespace saelab
