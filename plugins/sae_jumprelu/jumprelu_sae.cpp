// JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"; SAELens architecture "jumprelu"):
//   pre = (x - b_dec) W_enc + b_enc,  z = pre · H(pre - θ),  x̂ = z W_dec + b_dec,
// with a learned threshold θ [d_sae] > 0, trained as log θ (so it stays positive) and saved as
// `threshold`. θ gets gradients through the rectangle-kernel straight-through estimator of width
// `bandwidth`; SaeOutput.l0_estimate = Σ_i H(pre_i - θ_i) per row with the same estimator, for the
// l0 loss.
#include <cmath>
#include <memory>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/pimpl.h>

#include "saelab/core/plugin_api.hpp"
#include "saelab/sae/base.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

struct JumpReluConfig {
  SaeCommonConfig common;
  double threshold_init = 0.001;
  double bandwidth = 0.001;
};

class JumpReluSaeImpl : public SaeBase {
 public:
  JumpReluSaeImpl(const JumpReluConfig& cfg, const PluginContext& ctx)
      : SaeBase(cfg.common, ctx), bandwidth_(cfg.bandwidth) {
    log_threshold_ = register_parameter(
        "log_threshold", at::full({cfg.common.d_sae}, std::log(cfg.threshold_init), W_enc_.options()));
  }

  std::string architecture() const override { return "jumprelu"; }

  SaeOutput forward(const torch::Tensor& x) override {
    check_input(x, "forward");
    SaeOutput out;
    out.pre_activations = sae_math::encode_pre(x, W_enc_, b_enc_, b_dec_, pool_);
    auto theta = log_threshold_.exp();
    out.latents = sae_math::jumprelu(out.pre_activations, theta, bandwidth_);
    out.l0_estimate = sae_math::heaviside_ste(out.pre_activations, theta, bandwidth_).sum(-1);
    out.reconstruction = at::addmm(b_dec_, out.latents, W_dec_);
    return out;
  }

  torch::Tensor encode(const torch::Tensor& x) override {
    check_input(x, "encode");
    return sae_math::jumprelu(sae_math::encode_pre(x, W_enc_, b_enc_, b_dec_), log_threshold_.exp(),
                              bandwidth_);
  }

 protected:
  void add_extra_state(TensorMap& out) const override { out["threshold"] = log_threshold_.detach().exp(); }
  std::vector<std::string> extra_state_names() const override { return {"threshold"}; }
  void load_extra_state(const TensorMap& tensors) override {
    auto t = checked_state_tensor(tensors, "threshold", {cfg_.d_sae});
    SAELAB_CHECK((t >= 0).all().item<bool>(), FormatError,
                 "jumprelu SAE state: tensor 'threshold' has negative entries (min ", t.min().item<double>(),
                 "); JumpReLU thresholds must be ≥ 0");
    pending_log_threshold_ = t.log();  // θ = 0 gives log θ = -inf: a plain ReLU, exactly
  }

 public:
  void load_state(const TensorMap& tensors) override {
    SaeBase::load_state(tensors);
    at::NoGradGuard no_grad;
    log_threshold_.copy_(pending_log_threshold_);
    pending_log_threshold_ = torch::Tensor();
  }

 private:
  double bandwidth_;
  torch::Tensor log_threshold_;          // [d_sae]
  torch::Tensor pending_log_threshold_;  // checked by load_extra_state, applied by load_state
};
TORCH_MODULE(JumpReluSae);

OptionSchema schema() {
  OptionSchema s;
  add_common_sae_options(s);
  s.real("threshold_init", 0.001, "initial threshold of every latent").above(0);
  s.real("bandwidth", 0.001,
         "width ε of the rectangle kernel of the threshold's "
         "straight-through gradient")
      .above(0);
  return s;
}

JumpReluConfig read_config(const Options& o) {
  JumpReluConfig c;
  c.common = read_common_sae_options(o);
  c.threshold_init = o.real("threshold_init");
  c.bandwidth = o.real("bandwidth");
  if (!(c.threshold_init > 0) || !std::isfinite(c.threshold_init)) {
    o.fail("threshold_init", cat("threshold_init = ", c.threshold_init, " must be finite and > 0"));
  }
  if (!(c.bandwidth > 0) || !std::isfinite(c.bandwidth)) {
    o.fail("bandwidth", cat("bandwidth = ", c.bandwidth, " must be finite and > 0"));
  }
  return c;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>(
      "jumprelu",
      "JumpReLU SAE: learned per-latent thresholds with a straight-through estimator (train "
      "with mse + l0)",
      schema(),
      [](const Options& o, const PluginContext& ctx) {
        return std::make_unique<JumpReluSaeImpl>(read_config(o), ctx);
      },
      {"jumprelu"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_jumprelu", "0.1.0", "JumpReLU sparse autoencoder", saelab::register_plugin)
