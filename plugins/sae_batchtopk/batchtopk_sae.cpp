// BatchTopK SAE (Bussmann et al. 2024; SAELens training architecture "batchtopk").
//   training: the k·batch largest pre-activations across the whole batch are kept (ReLU after),
//             so k is the average number of active latents per row; every training forward also
//             updates the inference threshold θ, a running average of the smallest positive kept
//             activation: θ ← (1 - lr) θ + lr · min (the first batch sets θ directly).
//   eval:     z = ReLU(pre) · 1[pre > θ], a JumpReLU with one threshold for all latents, which is
//             how SAELens saves a BatchTopK SAE for inference (architecture "jumprelu", tensor
//             `threshold [d_sae]`).
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

struct BatchTopkConfig {
  SaeCommonConfig common;
  double k = 32;
  double threshold_lr = 0.01;
  bool sparse_decode = true;
};

class BatchTopkSaeImpl : public SaeBase {
 public:
  BatchTopkSaeImpl(const BatchTopkConfig& cfg, const PluginContext& ctx)
      : SaeBase(cfg.common, ctx), cfg_k_(cfg) {
    threshold_ = register_buffer("threshold", at::zeros({cfg.common.d_sae}, W_enc_.options()));
  }

  std::string architecture() const override { return "batchtopk"; }
  std::string inference_architecture() const override { return "jumprelu"; }

  SaeOutput forward(const torch::Tensor& x) override {
    check_input(x, "forward");
    SaeOutput out;
    if (!is_training()) {
      out.pre_activations = sae_math::encode_pre(x, W_enc_, b_enc_, b_dec_, pool_);
      out.latents = thresholded(out.pre_activations);
      out.reconstruction = at::addmm(b_dec_, out.latents, W_dec_);
      return out;
    }
    auto enc = encode_batch(x);
    update_threshold(enc.latents.values);
    out.latents = sae_math::densify(enc.latents, cfg_.d_sae, pool_);
    out.pre_activations = enc.pre_activations;
    out.reconstruction = cfg_k_.sparse_decode ? sae_math::sparse_decode(enc.latents, W_dec_, pool_) + b_dec_
                                              : at::addmm(b_dec_, out.latents, W_dec_);
    return out;
  }

  // Per-row encoding (no batch dependence): the inference rule, in training mode as well.
  torch::Tensor encode(const torch::Tensor& x) override {
    check_input(x, "encode");
    return thresholded(sae_math::encode_pre(x, W_enc_, b_enc_, b_dec_));
  }

  nlohmann::json extra_config() const override {
    auto j = SaeBase::extra_config();
    j["k"] = cfg_k_.k;
    return j;
  }

  double threshold_value() const { return threshold_.max().item<double>(); }

 protected:
  void add_extra_state(TensorMap& out) const override { out["threshold"] = threshold_.detach(); }
  std::vector<std::string> extra_state_names() const override { return {"threshold"}; }
  void load_extra_state(const TensorMap& tensors) override {
    auto t = checked_state_tensor(tensors, "threshold", {cfg_.d_sae});
    SAELAB_CHECK((t >= 0).all().item<bool>(), FormatError,
                 "batchtopk SAE state: tensor 'threshold' has negative entries (min ", t.min().item<double>(),
                 "); thresholds must be ≥ 0");
    pending_threshold_ = t;
  }

 public:
  void load_state(const TensorMap& tensors) override {
    SaeBase::load_state(tensors);
    at::NoGradGuard no_grad;
    threshold_.copy_(pending_threshold_);
    pending_threshold_ = torch::Tensor();
  }

 private:
  torch::Tensor thresholded(const torch::Tensor& pre) const {
    return at::relu(pre) * (pre > threshold_).to(pre.scalar_type());
  }

  sae_math::SparseEncodeResult encode_batch(const torch::Tensor& x) {
    const std::int64_t count = std::max<std::int64_t>(1, std::llround(cfg_k_.k * double(x.size(0))));
    const std::int64_t d_sae = cfg_.d_sae;
    return sae_math::sparse_encode(
        x, W_enc_, b_enc_, b_dec_,
        [count, d_sae](const torch::Tensor& pre) {
          auto flat = sae_math::batch_topk_flat_indices(pre, count);
          return sae_math::rows_from_flat(torch::Tensor(), flat, pre.size(0), d_sae);
        },
        pool_);
  }

  void update_threshold(const torch::Tensor& values) {
    at::NoGradGuard no_grad;
    auto v = values.detach();
    auto pos = v.masked_select(v > 0);
    if (pos.numel() == 0) return;
    auto m = pos.min().to(threshold_.scalar_type());
    if (!(threshold_ > 0).any().item<bool>()) {
      threshold_.fill_(m);
    } else {
      threshold_.mul_(1.0 - cfg_k_.threshold_lr).add_(m * cfg_k_.threshold_lr);
    }
  }

  BatchTopkConfig cfg_k_;
  torch::Tensor threshold_;          // [d_sae], all entries equal while training here
  torch::Tensor pending_threshold_;  // checked by load_extra_state, applied by load_state
};
TORCH_MODULE(BatchTopkSae);

OptionSchema schema() {
  OptionSchema s;
  add_common_sae_options(s);
  s.real("k", 32, "average active latents per row (k·batch kept per batch)").above(0);
  s.real("threshold_lr", 0.01,
         "rate of the running average that estimates the inference "
         "threshold")
      .above(0)
      .at_most(1);
  s.choice("decode", "auto", {"auto", "sparse", "dense"},
           "reconstruction in training from the gathered decoder rows (sparse) or a dense GEMM");
  return s;
}

BatchTopkConfig read_config(const Options& o) {
  BatchTopkConfig c;
  c.common = read_common_sae_options(o);
  c.k = o.real("k");
  if (!(c.k > 0) || c.k > double(c.common.d_sae)) {
    o.fail("k", cat("k = ", c.k, " must be in (0, d_sae = ", c.common.d_sae, "]"));
  }
  c.threshold_lr = o.real("threshold_lr");
  if (!(c.threshold_lr > 0 && c.threshold_lr <= 1)) {
    o.fail("threshold_lr", cat("threshold_lr = ", c.threshold_lr, " must be in (0, 1]"));
  }
  const auto& mode = o.string("decode");
  c.sparse_decode = mode == "sparse" || (mode == "auto" && c.k * 8 <= double(c.common.d_sae));
  return c;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>("batchtopk",
                         "BatchTopK SAE: k·batch largest pre-activations per batch in training, a learned "
                         "threshold at inference (train with mse + auxk)",
                         schema(),
                         [](const Options& o, const PluginContext& ctx) {
                           return std::make_unique<BatchTopkSaeImpl>(read_config(o), ctx);
                         },
                         {"batchtopk"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_batchtopk", "0.1.0", "BatchTopK sparse autoencoder", saelab::register_plugin)
