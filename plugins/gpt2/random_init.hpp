#pragma once
// Random-weight GPT-2 models, written as a real model directory (config.json + model.safetensors
// with the hub's unprefixed names) so that they load through exactly the path pretrained ones do.
//
// Initialisation follows GPT-2 (and transformers' _init_weights): every weight matrix and both
// embeddings ~ N(0, 0.02), the residual-output projections attn.c_proj and mlp.c_proj
// ~ N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weight 1 and bias 0. Tests set ln_noise and
// bias_std so that LayerNorm affine parameters and biases are not trivial and a comparison with a
// reference implementation exercises them.
#include <cstdint>
#include <filesystem>

#include "config.hpp"

namespace saelab::gpt2 {

struct RandomInit {
  Config config;
  std::uint64_t seed = 0;
  double ln_noise = 0.0;  // LayerNorm weight ~ 1 + N(0, ln_noise), bias ~ N(0, ln_noise)
  double bias_std = 0.0;  // Conv1D biases ~ N(0, bias_std)
};

// Writes config.json and model.safetensors into `dir` (created if needed). A directory that
// already holds the model for the same RandomInit is left as it is.
void write_random_model(const std::filesystem::path& dir, const RandomInit& init);

}  // namespace saelab::gpt2
