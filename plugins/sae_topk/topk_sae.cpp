// TopK SAE (Gao et al. 2024; SAELens architecture "topk"): every row keeps its k largest
// pre-activations, ReLU after, the rest are zero:
//   pre = (x - b_dec) W_enc + b_enc,  z = ReLU(TopK_k(pre)),  x̂ = z W_dec + b_dec.
// Ties are broken towards the lower latent index, so exactly k entries are selected per row.
// The k selected latents per row drive a sparse decode (gathered W_dec rows) and a sparse encoder
// backward; `decode: dense` uses the [batch, d_sae] GEMM instead (same values).
#include <memory>

#include <ATen/ATen.h>
#include <torch/nn/pimpl.h>

#include "saelab/core/plugin_api.hpp"
#include "saelab/sae/base.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

struct TopkConfig {
  SaeCommonConfig common;
  std::int64_t k = 32;
  bool sparse_decode = true;
};

class TopkSaeImpl : public SaeBase {
 public:
  TopkSaeImpl(const TopkConfig& cfg, const PluginContext& ctx)
      : SaeBase(cfg.common, ctx), k_(cfg.k), sparse_(cfg.sparse_decode) {}

  std::string architecture() const override { return "topk"; }

  SaeOutput forward(const torch::Tensor& x) override {
    check_input(x, "forward");
    auto enc = encode_sparse(x);
    SaeOutput out;
    out.latents = sae_math::densify(enc.latents, cfg_.d_sae, pool_);
    out.pre_activations = enc.pre_activations;
    out.reconstruction = sparse_ ? sae_math::sparse_decode(enc.latents, W_dec_, pool_) + b_dec_
                                 : at::addmm(b_dec_, out.latents, W_dec_);
    return out;
  }

  torch::Tensor encode(const torch::Tensor& x) override {
    check_input(x, "encode");
    return sae_math::densify(encode_sparse(x).latents, cfg_.d_sae, pool_);
  }

  nlohmann::json extra_config() const override {
    auto j = SaeBase::extra_config();
    j["k"] = k_;
    return j;
  }

 private:
  sae_math::SparseEncodeResult encode_sparse(const torch::Tensor& x) {
    const std::int64_t k = k_;
    return sae_math::sparse_encode(
        x, W_enc_, b_enc_, b_dec_,
        [k](const torch::Tensor& pre) {
          auto idx = sae_math::topk_indices(pre, k);
          return sae_math::uniform_rows(torch::Tensor(), idx);
        },
        pool_);
  }

  std::int64_t k_;
  bool sparse_;
};
TORCH_MODULE(TopkSae);

OptionSchema schema() {
  OptionSchema s;
  add_common_sae_options(s);
  s.integer("k", 32, "active latents per row").at_least(1);
  s.choice("decode", "auto", {"auto", "sparse", "dense"},
           "reconstruction from the k gathered decoder rows (sparse) or a dense GEMM; auto "
           "picks sparse unless k is a large fraction of d_sae");
  return s;
}

TopkConfig read_config(const Options& o) {
  TopkConfig c;
  c.common = read_common_sae_options(o);
  c.k = o.integer("k");
  if (c.k < 1 || c.k > c.common.d_sae) {
    o.fail("k", cat("k = ", c.k, " must be between 1 and d_sae = ", c.common.d_sae));
  }
  const auto& mode = o.string("decode");
  // Measured by bench/sae (sparse vs dense decode): the gather wins by far at small k / d_sae.
  c.sparse_decode = mode == "sparse" || (mode == "auto" && c.k * 8 <= c.common.d_sae);
  return c;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>(
      "topk", "TopK SAE: the k largest pre-activations per row, ReLU (train with mse + auxk)", schema(),
      [](const Options& o, const PluginContext& ctx) {
        return std::make_unique<TopkSaeImpl>(read_config(o), ctx);
      },
      {"topk"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_topk", "0.1.0", "TopK sparse autoencoder", saelab::register_plugin)
