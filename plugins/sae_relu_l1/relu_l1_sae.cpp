// The standard SAE (SAELens architecture "standard"), trained with MSE + L1 (Towards
// Monosemanticity; Anthropic's April 2024 update is the l1_decoder_norm loss on the same SAE):
//   z = ReLU((x - b_dec) W_enc + b_enc),  x̂ = z W_dec + b_dec.
// Forward and backward run as one fused autograd node (sae_math::relu_sae).
#include <memory>

#include <torch/nn/pimpl.h>

#include "saelab/core/plugin_api.hpp"
#include "saelab/sae/base.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

class StandardSaeImpl : public SaeBase {
 public:
  StandardSaeImpl(const SaeCommonConfig& cfg, const PluginContext& ctx) : SaeBase(cfg, ctx) {}

  std::string architecture() const override { return "standard"; }

  SaeOutput forward(const torch::Tensor& x) override {
    check_input(x, "forward");
    auto r = sae_math::relu_sae(x, W_enc_, b_enc_, W_dec_, b_dec_, pool_);
    SaeOutput out;
    out.latents = r.latents;
    out.reconstruction = r.reconstruction;
    out.pre_activations = r.pre_activations;
    return out;
  }

  torch::Tensor encode(const torch::Tensor& x) override {
    check_input(x, "encode");
    return at::relu(pre_activations(x));
  }
};
TORCH_MODULE(StandardSae);

OptionSchema schema() {
  OptionSchema s;
  add_common_sae_options(s);
  return s;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>(
      "relu_l1", "standard SAE: ReLU latents, linear decoder (train with mse + l1 or l1_decoder_norm)",
      schema(),
      [](const Options& o, const PluginContext& ctx) {
        return std::make_unique<StandardSaeImpl>(read_common_sae_options(o), ctx);
      },
      {"standard"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_relu_l1", "0.1.0", "Standard (ReLU) sparse autoencoder", saelab::register_plugin)
