#pragma once
// Loading GPT-2 from a Hugging Face model directory.
//
// Directory layout:
//   config.json          see config.hpp
//   model.safetensors    see saelab/formats/safetensors.hpp; tensors named as transformers saves them:
//     wte.weight [vocab, d]            wpe.weight [n_positions, d]
//     h.{i}.ln_1.{weight,bias} [d]     h.{i}.attn.c_attn.weight [d, 3d]   .bias [3d]
//     h.{i}.attn.c_proj.weight [d, d]  .bias [d]                          h.{i}.ln_2.{weight,bias} [d]
//     h.{i}.mlp.c_fc.weight [d, m]     .bias [m]     h.{i}.mlp.c_proj.weight [m, d]   .bias [d]
//     ln_f.{weight,bias} [d]           lm_head.weight [vocab, d]  (optional; required when
//                                                                  tie_word_embeddings is false)
//   Every name may carry the prefix "transformer." (files saved from GPT2LMHeadModel). The causal
//   mask buffers h.{i}.attn.bias and h.{i}.attn.masked_bias are ignored. Dtypes F32, F16 and
//   BF16 are accepted and converted. Anything else - an unknown name, a missing tensor, a wrong
//   shape or dtype, a NaN - is a FormatError naming the file, the tensor and what was expected.
//   pytorch_model.bin and other pickles are refused, never parsed.
//   The weights' SHA-256 (part of the source's identity) is cached in model.safetensors.sha256
//   beside the file when the directory is writable (see saelab/formats/hub.hpp, file_sha256_cached).
#include <filesystem>
#include <string>

#include <torch/types.h>

#include "config.hpp"
#include "model.hpp"

namespace saelab::gpt2 {

struct LoadedModel {
  Gpt2 model{nullptr};
  Config config;
  std::filesystem::path dir;
  std::string config_sha256;   // of config.json
  std::string weights_sha256;  // of model.safetensors
};

// dtype: the compute dtype (kFloat32 or kBFloat16); device: where the parameters go.
LoadedModel load_model_dir(const std::filesystem::path& dir, torch::Dtype dtype, const torch::Device& device);

}  // namespace saelab::gpt2
