#pragma once
// SaeArchitecture: a sparse autoencoder, x [batch, d_in] -> latents [batch, d_sae] -> x̂ [batch, d_in],
// or a transcoder, whose output [batch, d_out] predicts another hook (shape().d_out > 0).
//
// Parameters use SAELens names and layouts so that saved SAEs load in Python unchanged:
//   W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in], threshold [d_sae] (JumpReLU);
//   gated: b_gate, b_mag, r_mag [d_sae] instead of b_enc; transcoders: W_dec [d_sae, d_out],
//   b_dec [d_out], W_skip [d_out, d_in] (formats/sae_dir.hpp lists every architecture's tensors).
// The trainer calls before_optimizer_step() after backward (e.g. to project out the gradient parallel
// to unit-norm decoder rows) and after_optimizer_step() after Adam (e.g. to renormalise them).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API SaeOutput {
  torch::Tensor latents;          // [batch, d_sae] after the nonlinearity (sparse)
  torch::Tensor reconstruction;   // [batch, d_in]
  torch::Tensor pre_activations;  // [batch, d_sae] before the nonlinearity (for auxiliary losses)
  // [batch] differentiable estimate of the number of active latents, for architectures with learned
  // thresholds (JumpReLU's straight-through L0). Undefined otherwise.
  torch::Tensor l0_estimate;
  // Gated SAEs: the gate path's ReLU(π_gate) [batch, d_sae] and its reconstruction through a frozen
  // copy of the decoder (W_dec and b_dec detached) [batch, d_in], for the gate's sparsity and
  // auxiliary losses (Rajamanoharan et al. 2024). Undefined otherwise.
  torch::Tensor gate_activations;
  torch::Tensor gate_reconstruction;
  // Matryoshka SAEs in training: the reconstruction [batch, d_out] from latents [0, m) for every
  // inner prefix size m, smallest first (the full width is `reconstruction`). Empty otherwise.
  std::vector<torch::Tensor> prefix_reconstructions;
};

struct SAELAB_API SaeShape {
  std::int64_t d_in = 0;
  std::int64_t d_sae = 0;
  std::int64_t d_out = 0;  // a transcoder's output width (the target hook's); 0 for an SAE
  // Width of the reconstruction: d_out for a transcoder, d_in for an SAE.
  std::int64_t out() const { return d_out > 0 ? d_out : d_in; }
};

using TensorMap = std::map<std::string, torch::Tensor>;

class SAELAB_API SaeArchitecture : public torch::nn::Module {
 public:
  static constexpr const char* kKind = "sae";

  // SAELens architecture name: "standard", "topk", "batchtopk", "matryoshka_batchtopk", "jumprelu",
  // "gated", "transcoder", "skip_transcoder" (cfg.json gets inference_architecture()).
  virtual std::string architecture() const = 0;
  virtual SaeShape shape() const = 0;

  virtual SaeOutput forward(const torch::Tensor& x) = 0;           // x [batch, d_in]
  virtual torch::Tensor encode(const torch::Tensor& x) = 0;        // -> [batch, d_sae]
  virtual torch::Tensor decode(const torch::Tensor& latents) = 0;  // -> [batch, d_in]

  // Every tensor to save, by SAELens name, and the inverse. load_state checks names and shapes.
  virtual TensorMap state() const = 0;
  virtual void load_state(const TensorMap& tensors) = 0;
  // Architecture-specific cfg.json keys (e.g. {"k": 32}).
  virtual nlohmann::json extra_config() const { return nlohmann::json::object(); }

  // The live W_dec parameter [d_sae, d_in] (not a copy: gradients flow into it). Losses that need
  // the decoder use it (auxk's sparse decode, the decoder-norm-weighted L1).
  virtual torch::Tensor decoder_weight() const = 0;

  // Data-dependent initialisation (b_dec = mean or geometric median), from a sample of training
  // inputs x [n, d_in] after input scaling. The trainer calls it once, before the first step.
  virtual void initialize_from_sample(const torch::Tensor& x) {}
  // Transcoders: the same for a sample of the targets y [n, d_out] (b_dec = their mean). The
  // trainer calls it after initialize_from_sample when the run has a target hook.
  virtual void initialize_from_target_sample(const torch::Tensor& y) {}

  // Resampling of dead latents: latents idx [n] (int64) get the directions new_dirs [n, d_in]
  // (normalised here): decoder row = unit direction (times the decoder norm in use), encoder
  // column = direction * enc_norm, b_enc = 0. The trainer resets the optimiser state of these rows.
  virtual void reinitialize_latents(const torch::Tensor& idx, const torch::Tensor& new_dirs,
                                    double enc_norm) = 0;

  // cfg.json "architecture" for a SAELens inference load. Differs from architecture() when
  // SAELens saves a training architecture as another one (BatchTopK is saved as "jumprelu").
  virtual std::string inference_architecture() const { return architecture(); }

  virtual void before_optimizer_step() {}
  virtual void after_optimizer_step() {}
  // Inputs were multiplied by `factor` during training; fold it back so the saved SAE takes raw
  // activations: W_enc *= factor, W_dec /= factor, b_dec /= factor (each architecture knows its own).
  virtual void fold_input_scale(double factor) = 0;
  // Transcoders: the targets were multiplied by `factor` (a scale of their own); fold it into the
  // output side so the saved transcoder predicts raw targets. An SAE, whose target is its input,
  // never gets this call.
  virtual void fold_output_scale(double factor) {
    throw Error(cat(architecture(),
                    " SAE: fold_output_scale called, but only a transcoder has a target "
                    "of its own to scale"));
  }
};

}  // namespace saelab
