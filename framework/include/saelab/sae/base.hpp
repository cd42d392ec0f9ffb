#pragma once
// SaeBase: what the linear-encoder/linear-decoder SAE plugins share (standard, TopK, BatchTopK,
// Matryoshka BatchTopK, JumpReLU, gated): the four SAELens parameters, their initialisation, the unit-norm
// decoder constraint, state save/load with checks, input-scale folding, b_dec from a sample and resampling.
//
//   pre = (x - b_dec) W_enc + b_enc      [batch, d_sae]
//   z   = nonlinearity(pre)              (the plugin's own)
//   x̂   = z W_dec + b_dec                [batch, d_in]
//
// Options common to these plugins (add_common_sae_options):
//   d_in               int ≥ 1, or auto (-1, the default): the trainer sets it from the activation
//                      store (Options::set("d_in", ...)) before creating the SAE
//   d_sae              int ≥ 1, default 4096
//   decoder_norm       unit | free: unit keeps every W_dec row at L2 norm 1 (gradient projected
//                      before the optimiser step, rows renormalised after it)
//   decoder_init_norm  float ≥ 0; 0 or auto: 1 with unit rows, 0.1 otherwise (SAELens' default)
//   b_dec_init         zero | mean | geometric_median (of the trainer's sample)
// Initialisation: W_dec rows isotropic random directions of norm decoder_init_norm, W_enc = W_decᵀ,
// b_enc = 0, b_dec = 0 until initialize_from_sample(). Random numbers come from PluginContext.seed.
#include <cstdint>
#include <string>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/core/options.hpp"
#include "saelab/core/registry.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {

struct SAELAB_API SaeCommonConfig {
  std::int64_t d_in = 0;
  std::int64_t d_sae = 4096;
  bool unit_norm_decoder = true;
  double decoder_init_norm = 1.0;
  std::string b_dec_init = "zero";  // zero | mean | geometric_median
};

SAELAB_API void add_common_sae_options(OptionSchema& schema);
// Reads and cross-checks the common options; errors name the option and its source line.
SAELAB_API SaeCommonConfig read_common_sae_options(const Options& opts);

class SAELAB_API SaeBase : public SaeArchitecture {
 public:
  SaeBase(const SaeCommonConfig& cfg, const PluginContext& ctx);

  SaeShape shape() const override { return {cfg_.d_in, cfg_.d_sae}; }
  torch::Tensor decode(const torch::Tensor& latents) override;  // dense: z W_dec + b_dec
  TensorMap state() const override;
  void load_state(const TensorMap& tensors) override;
  nlohmann::json extra_config() const override;
  torch::Tensor decoder_weight() const override { return W_dec_; }
  void initialize_from_sample(const torch::Tensor& x) override;
  void reinitialize_latents(const torch::Tensor& idx, const torch::Tensor& new_dirs,
                            double enc_norm) override;
  void before_optimizer_step() override;
  void after_optimizer_step() override;
  void fold_input_scale(double factor) override;

  const SaeCommonConfig& common_config() const { return cfg_; }

 protected:
  // (x - b_dec) W_enc + b_enc, differentiable. x [batch, d_in] -> [batch, d_sae].
  torch::Tensor pre_activations(const torch::Tensor& x) const;
  // Throws a FormatError naming x's shape and dtype when it is not [batch, d_in] floating point.
  void check_input(const torch::Tensor& x, const char* what) const;

  // Plugins with more tensors (threshold) add them to state() and read them back here. `tensors`
  // has already been checked for the base names; extra names are the plugin's to check.
  virtual void add_extra_state(TensorMap& out) const {}
  virtual void load_extra_state(const TensorMap& tensors) {}
  // Names load_state accepts besides W_enc, b_enc, W_dec, b_dec (for the unknown-name message).
  virtual std::vector<std::string> extra_state_names() const { return {}; }
  // Checks one tensor of a state map: present, floating point, the expected shape, finite.
  // Returns it converted to the parameters' dtype and device.
  torch::Tensor checked_state_tensor(const TensorMap& tensors, const std::string& name,
                                     at::IntArrayRef expected) const;

  SaeCommonConfig cfg_;
  torch::Device device_;
  torch::Tensor W_enc_;  // [d_in, d_sae]
  torch::Tensor b_enc_;  // [d_sae]
  torch::Tensor W_dec_;  // [d_sae, d_in]
  torch::Tensor b_dec_;  // [d_in]
  // Reused step-to-step buffers of the sae_math nodes (see sae_math::TensorPool).
  sae_math::PoolPtr pool_ = c10::make_intrusive<sae_math::TensorPool>();
};

}  // namespace saelab
