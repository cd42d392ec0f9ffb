// Gated SAE (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated Sparse
// Autoencoders"; SAELens architecture "gated"). Which latents fire and how strongly are two paths
// that share the encoder directions:
//   x̃      = x - b_dec
//   π_gate = x̃ W_enc + b_gate                      [batch, d_sae]   fires where π_gate > 0
//   π_mag  = x̃ (W_enc ⊙ exp r_mag) + b_mag          [batch, d_sae]   (r_mag rescales each column)
//   z      = 1[π_gate > 0] · ReLU(π_mag),   x̂ = z W_dec + b_dec
// The step function passes no gradient, so the gate is trained by two terms on ReLU(π_gate) that
// the forward pass hands to the losses (SaeOutput::gate_activations / gate_reconstruction):
//   gate_l1    mean_b Σ_i ReLU(π_gate)_i ‖W_dec,i‖
//   gate_aux   mean_b |x - (ReLU(π_gate) W̄_dec + b̄_dec)|², W̄_dec, b̄_dec detached (frozen decoder)
// Train with mse + gate_l1 + gate_aux. Initialisation (as the paper's reference code): b_gate,
// b_mag, r_mag = 0, W_enc = W_decᵀ.
//
// The base's b_enc parameter is the gate bias; it is saved and loaded as "b_gate" (SAELens names).
#include <memory>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/pimpl.h>

#include "saelab/core/plugin_api.hpp"
#include "saelab/sae/base.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

class GatedSaeImpl : public SaeBase {
 public:
  GatedSaeImpl(const SaeCommonConfig& cfg, const PluginContext& ctx) : SaeBase(cfg, ctx) {
    auto opts = W_enc_.options();
    r_mag_ = register_parameter("r_mag", at::zeros({cfg.d_sae}, opts));
    b_mag_ = register_parameter("b_mag", at::zeros({cfg.d_sae}, opts));
  }

  std::string architecture() const override { return "gated"; }

  SaeOutput forward(const torch::Tensor& x) override {
    check_input(x, "forward");
    Paths p = paths(x);
    SaeOutput out;
    out.latents = p.latents;
    out.pre_activations = p.magnitude_pre;
    out.reconstruction = at::addmm(b_dec_, out.latents, W_dec_);
    if (is_training()) {
      out.gate_activations = at::relu(p.gate_pre);
      out.gate_reconstruction = at::addmm(b_dec_.detach(), out.gate_activations, W_dec_.detach());
    }
    return out;
  }

  torch::Tensor encode(const torch::Tensor& x) override {
    check_input(x, "encode");
    return paths(x).latents;
  }

  TensorMap state() const override {
    TensorMap m = SaeBase::state();
    m["b_gate"] = m.at("b_enc");
    m.erase("b_enc");
    return m;
  }

  void load_state(const TensorMap& tensors) override {
    SAELAB_CHECK(!tensors.count("b_enc"), FormatError,
                 "gated SAE state: unexpected tensor 'b_enc'; a gated SAE has b_gate, b_mag and r_mag in "
                 "its place (exactly W_enc, b_gate, b_mag, r_mag, W_dec, b_dec)");
    SAELAB_CHECK(tensors.count("b_gate"), FormatError,
                 "gated SAE state: tensor 'b_gate' is missing (a gated SAE with d_sae = ", cfg_.d_sae,
                 " needs it with shape [", cfg_.d_sae, "])");
    TensorMap renamed = tensors;
    renamed["b_enc"] = renamed.at("b_gate");
    renamed.erase("b_gate");
    SaeBase::load_state(renamed);
    at::NoGradGuard no_grad;
    r_mag_.copy_(pending_.r_mag);
    b_mag_.copy_(pending_.b_mag);
    pending_ = {};
  }

  void reinitialize_latents(const torch::Tensor& idx, const torch::Tensor& new_dirs,
                            double enc_norm) override {
    SaeBase::reinitialize_latents(idx, new_dirs, enc_norm);  // W_dec, W_enc, b_gate
    if (idx.numel() == 0) return;
    at::NoGradGuard no_grad;
    auto i = idx.to(device_);
    r_mag_.index_fill_(0, i, 0.0);
    b_mag_.index_fill_(0, i, 0.0);
  }

 protected:
  void add_extra_state(TensorMap& out) const override {
    out["r_mag"] = r_mag_.detach();
    out["b_mag"] = b_mag_.detach();
  }
  std::vector<std::string> extra_state_names() const override { return {"r_mag", "b_mag"}; }
  void load_extra_state(const TensorMap& tensors) override {
    pending_.r_mag = checked_state_tensor(tensors, "r_mag", {cfg_.d_sae});
    pending_.b_mag = checked_state_tensor(tensors, "b_mag", {cfg_.d_sae});
    // exp(r_mag) must stay finite, or every magnitude of that latent is inf or NaN.
    const double max_r = pending_.r_mag.max().item<double>();
    SAELAB_CHECK(max_r < 80, FormatError, "gated SAE state: tensor 'r_mag' has an entry ", max_r,
                 "; exp(r_mag) overflows float32 above 88, so entries must be below 80");
  }

 private:
  struct Paths {
    torch::Tensor gate_pre;       // [batch, d_sae] π_gate
    torch::Tensor magnitude_pre;  // [batch, d_sae] π_mag
    torch::Tensor latents;        // [batch, d_sae] z
  };

  // One GEMM serves both paths: x̃ (W_enc ⊙ exp r_mag) = (x̃ W_enc) ⊙ exp r_mag.
  Paths paths(const torch::Tensor& x) const {
    Paths p;
    torch::Tensor h = at::mm(x - b_dec_, W_enc_);  // [batch, d_sae]
    p.gate_pre = h + b_enc_;
    p.magnitude_pre = at::addcmul(b_mag_, h, at::exp(r_mag_));
    p.latents = at::relu(p.magnitude_pre) * (p.gate_pre > 0).to(h.scalar_type());
    return p;
  }

  struct Pending {
    torch::Tensor r_mag, b_mag;
  };

  torch::Tensor r_mag_;  // [d_sae]
  torch::Tensor b_mag_;  // [d_sae]
  Pending pending_;      // checked by load_extra_state, applied by load_state
};
TORCH_MODULE(GatedSae);

OptionSchema schema() {
  OptionSchema s;
  add_common_sae_options(s);
  return s;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>("gated",
                         "gated SAE: a gate path decides which latents fire, a magnitude path with shared "
                         "directions how strongly (train with mse + gate_l1 + gate_aux)",
                         schema(),
                         [](const Options& o, const PluginContext& ctx) {
                           return std::make_unique<GatedSaeImpl>(read_common_sae_options(o), ctx);
                         },
                         {"gated"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_gated", "0.1.0", "Gated sparse autoencoder", saelab::register_plugin)
