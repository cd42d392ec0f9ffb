// BatchTopK SAE (Bussmann et al. 2024; SAELens training architecture "batchtopk").
//   training: the k·batch largest pre-activations across the whole batch are kept (ReLU after),
//             so k is the average number of active latents per row; every training forward also
//             updates the inference threshold θ, a running average of the smallest positive kept
//             activation: θ ← (1 - lr) θ + lr · min (the first batch sets θ directly).
//   eval:     z = ReLU(pre) · 1[pre > θ], a JumpReLU with one threshold for all latents, which is
//             how SAELens saves a BatchTopK SAE for inference (architecture "jumprelu", tensor
//             `threshold [d_sae]`).
//
// Matryoshka BatchTopK (Bussmann et al. 2025, "Learning Multi-Level Features with Matryoshka
// SAEs"; SAELens training architecture "matryoshka_batchtopk") is the same SAE whose nested latent
// prefixes [0, m) for m in matryoshka_widths (strictly increasing, the last = d_sae) each
// reconstruct the input: x̂_m = Σ_{i<m} z_i W_dec,i + b_dec. In training the forward pass returns the
// inner x̂_m (SaeOutput::prefix_reconstructions) for the `matryoshka` loss, so the objective is
// Σ_m |x - x̂_m|² (mse for the full width) + auxk. Early prefixes learn the general features, and
// absorption of a general feature into a specific one costs the small prefixes' reconstruction.
// Saved as SAELens does: a JumpReLU, with matryoshka_widths kept in cfg.json.
//
// Data-parallel training (PluginContext::group): the selection is over the global batch, as one
// process with that batch would make it. Each rank's `count` largest pre-activations are gathered
// (count = k · rows · ranks, so they contain the global top count), the count-th largest of them is
// the cut, and each rank keeps its entries at or above it. The threshold's minimum is reduced over
// the ranks too, so θ stays equal on all of them.
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/pimpl.h>

#include "saelab/core/plugin_api.hpp"
#include "saelab/dist/process_group.hpp"
#include "saelab/sae/base.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

struct BatchTopkConfig {
  SaeCommonConfig common;
  double k = 32;
  double threshold_lr = 0.01;
  bool sparse_decode = true;
  std::vector<std::int64_t> matryoshka_widths;  // Matryoshka only: ascending, last = d_sae
};

class BatchTopkSaeImpl : public SaeBase {
 public:
  BatchTopkSaeImpl(const BatchTopkConfig& cfg, const PluginContext& ctx)
      : SaeBase(cfg.common, ctx), cfg_k_(cfg), group_(ctx.group) {
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
    add_training_outputs(enc, out);
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
  BatchTopkConfig cfg_k_;

  // Subclasses add what their losses need to a training forward's output.
  virtual void add_training_outputs(const sae_math::SparseEncodeResult& enc, SaeOutput& out) {}

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

  int ranks() const { return group_ ? group_->size() : 1; }

  sae_math::SparseEncodeResult encode_batch(const torch::Tensor& x) {
    const std::int64_t count =
        std::max<std::int64_t>(1, std::llround(cfg_k_.k * double(x.size(0)) * double(ranks())));
    const std::int64_t d_sae = cfg_.d_sae;
    return sae_math::sparse_encode(
        x, W_enc_, b_enc_, b_dec_,
        [this, count, d_sae](const torch::Tensor& pre) {
          auto flat = ranks() == 1 ? sae_math::batch_topk_flat_indices(pre, count) : global_top(pre, count);
          return sae_math::rows_from_flat(torch::Tensor(), flat, pre.size(0), d_sae);
        },
        pool_);
  }

  // pre [rows, d_sae] -> flat indices (ascending) of this rank's share of the global top `count`.
  torch::Tensor global_top(const torch::Tensor& pre, std::int64_t count) const {
    at::NoGradGuard no_grad;
    const torch::Tensor flat = pre.detach().reshape({-1});
    const std::int64_t m = std::min(count, flat.numel());
    const torch::Tensor mine = flat.index_select(0, sae_math::batch_topk_flat_indices(pre, m));  // [m]
    const torch::Tensor all = group_->all_gather(mine, "BatchTopK's selection over the global batch");
    if (all.numel() <= count) return at::arange(flat.numel(), flat.options().dtype(at::kLong));
    const torch::Tensor cut = std::get<0>(at::topk(all, count, 0, true, /*sorted=*/false)).min();
    return at::nonzero(flat >= cut).squeeze(1);
  }

  void update_threshold(const torch::Tensor& values) {
    at::NoGradGuard no_grad;
    auto v = values.detach();
    auto pos = v.masked_select(v > 0);
    torch::Tensor m = pos.numel() > 0
                          ? pos.min().to(threshold_.scalar_type()).reshape({1})
                          : at::full({1}, std::numeric_limits<float>::infinity(), threshold_.options());
    if (group_) group_->all_reduce(m, dist::ReduceOp::Min, "BatchTopK's threshold update");
    if (!std::isfinite(m.item<double>())) return;
    m = m.reshape({});
    if (!(threshold_ > 0).any().item<bool>()) {
      threshold_.fill_(m);
    } else {
      threshold_.mul_(1.0 - cfg_k_.threshold_lr).add_(m * cfg_k_.threshold_lr);
    }
  }

  std::shared_ptr<dist::ProcessGroup> group_;  // data-parallel training; null in one process
  torch::Tensor threshold_;                    // [d_sae], all entries equal while training here
  torch::Tensor pending_threshold_;            // checked by load_extra_state, applied by load_state
};
TORCH_MODULE(BatchTopkSae);

class MatryoshkaBatchTopkSaeImpl : public BatchTopkSaeImpl {
 public:
  using BatchTopkSaeImpl::BatchTopkSaeImpl;

  std::string architecture() const override { return "matryoshka_batchtopk"; }

  nlohmann::json extra_config() const override {
    auto j = BatchTopkSaeImpl::extra_config();
    j["matryoshka_widths"] = cfg_k_.matryoshka_widths;
    return j;
  }

 protected:
  void add_training_outputs(const sae_math::SparseEncodeResult& enc, SaeOutput& out) override {
    const auto& widths = cfg_k_.matryoshka_widths;
    for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
      const std::int64_t m = widths[i];
      if (!cfg_k_.sparse_decode) {
        out.prefix_reconstructions.push_back(
            at::addmm(b_dec_, out.latents.narrow(1, 0, m), W_dec_.narrow(0, 0, m)));
        continue;
      }
      sae_math::SparseRows inner = enc.latents;  // the same entries, those at latents ≥ m zeroed
      inner.values = enc.latents.values * (enc.latents.cols < m).to(enc.latents.values.scalar_type());
      out.prefix_reconstructions.push_back(sae_math::sparse_decode(inner, W_dec_, pool_) + b_dec_);
    }
  }
};
TORCH_MODULE(MatryoshkaBatchTopkSae);

OptionSchema schema(bool matryoshka) {
  OptionSchema s;
  add_common_sae_options(s);
  if (matryoshka) {
    s.strings("matryoshka_widths", {},
              "nested prefix sizes, strictly increasing, each in [1, d_sae]; d_sae is added as the "
              "last when missing (e.g. [128, 512, 2048] with d_sae 8192)");
  }
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

std::vector<std::int64_t> read_widths(const Options& o, std::int64_t d_sae) {
  std::vector<std::int64_t> widths;
  for (const auto& text : o.strings("matryoshka_widths")) {
    std::size_t used = 0;
    std::int64_t w = 0;
    try {
      w = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || text.empty() || w < 1 || w > d_sae)
      o.fail("matryoshka_widths", cat("entry '", text, "' is not an integer in [1, d_sae = ", d_sae, "]"));
    if (!widths.empty() && w <= widths.back())
      o.fail("matryoshka_widths",
             cat("entries must be strictly increasing, but ", w, " follows ", widths.back()));
    widths.push_back(w);
  }
  if (widths.empty() || widths.back() != d_sae) widths.push_back(d_sae);
  if (widths.size() < 2)
    o.fail("matryoshka_widths", cat("give at least one prefix size below d_sae = ", d_sae,
                                    "; with none this is a plain batchtopk SAE"));
  return widths;
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
  if (o.has("matryoshka_widths")) c.matryoshka_widths = read_widths(o, c.common.d_sae);
  const auto& mode = o.string("decode");
  c.sparse_decode = mode == "sparse" || (mode == "auto" && c.k * 8 <= double(c.common.d_sae));
  return c;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>("batchtopk",
                         "BatchTopK SAE: k·batch largest pre-activations per batch in training, a learned "
                         "threshold at inference (train with mse + auxk)",
                         schema(false),
                         [](const Options& o, const PluginContext& ctx) {
                           return std::make_unique<BatchTopkSaeImpl>(read_config(o), ctx);
                         },
                         {"batchtopk"});
  r.add<SaeArchitecture>("matryoshka_batchtopk",
                         "Matryoshka BatchTopK SAE: nested latent prefixes each reconstruct the input "
                         "(train with mse + matryoshka + auxk); saved as a JumpReLU",
                         schema(true),
                         [](const Options& o, const PluginContext& ctx) {
                           return std::make_unique<MatryoshkaBatchTopkSaeImpl>(read_config(o), ctx);
                         },
                         {"matryoshka_batchtopk"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_batchtopk", "0.2.0", "BatchTopK and Matryoshka BatchTopK sparse autoencoders",
              saelab::register_plugin)
