// Transcoder (Dunefsky et al. 2024, "Transcoders Find Interpretable LLM Feature Circuits"; SAELens
// architectures "transcoder" and "skip_transcoder"): a sparse autoencoder whose input and target
// are different hooks of the same forward pass, typically an MLP's input and output
// (blocks.L.ln2.hook_normalized -> blocks.L.hook_mlp_out), so that the sparse latents replace the
// MLP:
//   z = ReLU(x W_enc + b_enc)                          x [batch, d_in] (no b_dec subtraction)
//   ŷ = z W_dec + b_dec  (+ x W_skipᵀ with skip: true)  ŷ [batch, d_out]
// W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out], W_skip [d_out, d_in]
// (starts at 0). Train with mse + l1 (or l1_decoder_norm): the trainer compares ŷ with the target
// hook. Initialisation: W_dec rows random directions of norm decoder_init_norm in the output space,
// W_enc columns random directions in the input space of the same norm, biases 0; b_dec can start at
// the targets' mean.
#include <cmath>
#include <memory>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/pimpl.h>

#include "saelab/core/error.hpp"
#include "saelab/core/plugin_api.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

struct TranscoderConfig {
  std::int64_t d_in = 0;
  std::int64_t d_out = 0;
  std::int64_t d_sae = 4096;
  bool skip = false;
  bool unit_norm_decoder = false;
  double decoder_init_norm = 0.1;
  std::string b_dec_init = "mean";  // zero | mean (of the targets)
};

std::string shape_of(const torch::Tensor& t) {
  return t.defined() ? cat(t.sizes(), " ", t.scalar_type()) : std::string("an undefined tensor");
}

class TranscoderImpl : public SaeArchitecture {
 public:
  TranscoderImpl(const TranscoderConfig& cfg, const PluginContext& ctx) : cfg_(cfg), device_(ctx.device) {
    auto W_dec = sae_math::random_rows(cfg.d_sae, cfg.d_out, cfg.decoder_init_norm, ctx.seed);
    auto W_enc =
        sae_math::random_rows(cfg.d_sae, cfg.d_in, cfg.decoder_init_norm, ctx.seed + 1).t().contiguous();
    auto opts = at::TensorOptions().dtype(at::kFloat).device(device_);
    W_enc_ = register_parameter("W_enc", W_enc.to(device_));
    b_enc_ = register_parameter("b_enc", at::zeros({cfg.d_sae}, opts));
    W_dec_ = register_parameter("W_dec", W_dec.to(device_));
    b_dec_ = register_parameter("b_dec", at::zeros({cfg.d_out}, opts));
    if (cfg.skip) W_skip_ = register_parameter("W_skip", at::zeros({cfg.d_out, cfg.d_in}, opts));
  }

  std::string architecture() const override { return cfg_.skip ? "skip_transcoder" : "transcoder"; }
  SaeShape shape() const override { return {cfg_.d_in, cfg_.d_sae, cfg_.d_out}; }

  SaeOutput forward(const torch::Tensor& x) override {
    check(x, cfg_.d_in, "forward input x", "d_in");
    SaeOutput out;
    out.pre_activations = at::addmm(b_enc_, x, W_enc_);  // [batch, d_sae]
    out.latents = at::relu(out.pre_activations);
    out.reconstruction = at::addmm(b_dec_, out.latents, W_dec_);  // [batch, d_out]
    if (cfg_.skip) out.reconstruction = out.reconstruction + at::mm(x, W_skip_.t());
    return out;
  }

  torch::Tensor encode(const torch::Tensor& x) override {
    check(x, cfg_.d_in, "encode input", "d_in");
    return at::relu(at::addmm(b_enc_, x, W_enc_));
  }

  // Without the skip term, which needs x: the latents' contribution to the output.
  torch::Tensor decode(const torch::Tensor& latents) override {
    check(latents, cfg_.d_sae, "decode latents", "d_sae");
    return at::addmm(b_dec_, latents, W_dec_);
  }

  TensorMap state() const override {
    TensorMap m{{"W_enc", W_enc_.detach()},
                {"b_enc", b_enc_.detach()},
                {"W_dec", W_dec_.detach()},
                {"b_dec", b_dec_.detach()}};
    if (cfg_.skip) m["W_skip"] = W_skip_.detach();
    return m;
  }

  void load_state(const TensorMap& tensors) override;

  nlohmann::json extra_config() const override {
    // The encoder reads x itself: b_dec lives in the output space.
    return {{"apply_b_dec_to_input", false}, {"d_out", cfg_.d_out}};
  }

  torch::Tensor decoder_weight() const override { return W_dec_; }

  void initialize_from_target_sample(const torch::Tensor& y) override {
    check(y, cfg_.d_out, "initialize_from_target_sample", "d_out");
    if (cfg_.b_dec_init != "mean") return;
    at::NoGradGuard no_grad;
    b_dec_.copy_(y.to(b_dec_.options()).mean(0));
  }

  void reinitialize_latents(const torch::Tensor&, const torch::Tensor&, double) override {
    throw ConfigError(
        "a transcoder cannot resample dead latents: resampling takes a new latent's decoder direction from "
        "an input the SAE reconstructs badly, and a transcoder's input and output spaces differ. Remove "
        "train.resample_steps and train with the auxk loss or a smaller l1 coefficient instead");
  }

  void before_optimizer_step() override {
    if (cfg_.unit_norm_decoder && W_dec_.grad().defined())
      sae_math::project_out_row_parallel(W_dec_, W_dec_.grad());
  }
  void after_optimizer_step() override {
    if (cfg_.unit_norm_decoder) sae_math::renormalize_rows(W_dec_, 1.0);
  }

  // Training saw f·x: (f x) W_enc = x (f W_enc), and the skip term (f x) W_skipᵀ = x (f W_skip)ᵀ.
  void fold_input_scale(double factor) override {
    check_factor(factor, "fold_input_scale");
    at::NoGradGuard no_grad;
    W_enc_.mul_(factor);
    if (cfg_.skip) W_skip_.mul_(factor);
  }
  // ... and predicted g·y: the raw prediction is ŷ / g.
  void fold_output_scale(double factor) override {
    check_factor(factor, "fold_output_scale");
    at::NoGradGuard no_grad;
    W_dec_.div_(factor);
    b_dec_.div_(factor);
    if (cfg_.skip) W_skip_.div_(factor);
  }

 private:
  void check(const torch::Tensor& t, std::int64_t width, const char* what, const char* name) const {
    SAELAB_CHECK(t.defined() && t.dim() == 2 && t.size(1) == width && t.is_floating_point(), FormatError,
                 architecture(), " ", what, ": must be floating point [batch, ", width, "] (", name, " = ",
                 width, "), got ", shape_of(t));
  }
  void check_factor(double factor, const char* what) const {
    SAELAB_CHECK(std::isfinite(factor) && factor > 0, Error, architecture(), " ", what, ": factor = ", factor,
                 " must be finite and > 0");
  }
  torch::Tensor checked(const TensorMap& tensors, const std::string& name, at::IntArrayRef want) const;

  TranscoderConfig cfg_;
  torch::Device device_;
  torch::Tensor W_enc_;   // [d_in, d_sae]
  torch::Tensor b_enc_;   // [d_sae]
  torch::Tensor W_dec_;   // [d_sae, d_out]
  torch::Tensor b_dec_;   // [d_out]
  torch::Tensor W_skip_;  // [d_out, d_in], skip only
};
TORCH_MODULE(Transcoder);

torch::Tensor TranscoderImpl::checked(const TensorMap& tensors, const std::string& name,
                                      at::IntArrayRef want) const {
  auto it = tensors.find(name);
  SAELAB_CHECK(it != tensors.end(), FormatError, architecture(), " state: tensor '", name,
               "' is missing (d_in = ", cfg_.d_in, ", d_out = ", cfg_.d_out, ", d_sae = ", cfg_.d_sae,
               " needs it with shape ", want, ")");
  const torch::Tensor& t = it->second;
  SAELAB_CHECK(t.defined() && t.is_floating_point() && t.sizes() == want, FormatError, architecture(),
               " state: tensor '", name, "' is ", shape_of(t), "; it must be floating point with shape ",
               want, " (d_in = ", cfg_.d_in, ", d_out = ", cfg_.d_out, ", d_sae = ", cfg_.d_sae, ")");
  SAELAB_CHECK(at::isfinite(t).all().item<bool>(), FormatError, architecture(), " state: tensor '", name,
               "' contains NaN or infinite values");
  return t.to(W_enc_.options());
}

void TranscoderImpl::load_state(const TensorMap& tensors) {
  const TensorMap mine = state();
  for (const auto& [name, t] : tensors) {
    SAELAB_CHECK(mine.count(name), FormatError, architecture(), " state: unexpected tensor '", name, "'; a ",
                 architecture(), " has exactly: W_enc, b_enc, W_dec, b_dec",
                 cfg_.skip ? ", W_skip" : " (W_skip belongs to skip_transcoder)");
  }
  TensorMap loaded;
  for (const auto& [name, t] : mine) loaded[name] = checked(tensors, name, t.sizes());
  at::NoGradGuard no_grad;
  for (auto& p : named_parameters(false)) p.value().copy_(loaded.at(p.key()));
}

OptionSchema schema(bool skip_option) {
  OptionSchema s;
  s.integer("d_in", -1, "input width (the input hook's); auto: filled by the trainer from the store")
      .at_least(1)
      .autoable();
  s.integer("d_out", -1, "output width (the target hook's); auto: filled by the trainer from the store")
      .at_least(1)
      .autoable();
  s.integer("d_sae", 4096, "number of latents").at_least(1);
  if (skip_option)
    s.boolean("skip", false, "add a learned linear skip connection x W_skipᵀ (saved as skip_transcoder)");
  s.choice("decoder_norm", "free", {"unit", "free"},
           "unit: decoder rows kept at L2 norm 1; free: unconstrained");
  s.real("decoder_init_norm", 0.1, "initial L2 norm of decoder rows and encoder columns").above(0);
  s.choice("b_dec_init", "mean", {"zero", "mean"}, "initial decoder bias: zero or the targets' mean");
  return s;
}

std::int64_t width(const Options& o, const char* key, const char* hook) {
  if (o.is_auto(key) || o.integer(key) <= 0)
    o.fail(key, cat("is not set: the trainer fills it from the ", hook,
                    " hook's store; outside training set it to that hook's width"));
  return o.integer(key);
}

TranscoderConfig read_config(const Options& o, bool skip) {
  TranscoderConfig c;
  c.d_in = width(o, "d_in", "input");
  c.d_out = width(o, "d_out", "target");
  c.d_sae = o.integer("d_sae");
  if (c.d_sae < 1) o.fail("d_sae", cat("d_sae = ", c.d_sae, " must be ≥ 1"));
  c.skip = skip || (o.has("skip") && o.boolean("skip"));
  c.unit_norm_decoder = o.string("decoder_norm") == "unit";
  c.decoder_init_norm = c.unit_norm_decoder ? 1.0 : o.real("decoder_init_norm");
  if (!(c.decoder_init_norm > 0 && std::isfinite(c.decoder_init_norm)))
    o.fail("decoder_init_norm", cat("decoder_init_norm = ", c.decoder_init_norm, " must be finite and > 0"));
  c.b_dec_init = o.string("b_dec_init");
  return c;
}

void register_plugin(Registrar& r) {
  r.add<SaeArchitecture>(
      "transcoder",
      "transcoder: sparse latents read one hook and predict another (an MLP's input -> its output), "
      "optionally with a linear skip connection (train with mse + l1 on a harvest of both hooks)",
      schema(true),
      [](const Options& o, const PluginContext& ctx) {
        return std::make_unique<TranscoderImpl>(read_config(o, false), ctx);
      },
      {"transcoder"});
  // What a saved skip_transcoder directory loads as.
  r.add<SaeArchitecture>("skip_transcoder",
                         "transcoder with a linear skip connection (the same as transcoder with skip: true)",
                         schema(false),
                         [](const Options& o, const PluginContext& ctx) {
                           return std::make_unique<TranscoderImpl>(read_config(o, true), ctx);
                         },
                         {"skip_transcoder"});
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("sae_transcoder", "0.1.0", "Transcoders (sparse MLP replacements)", saelab::register_plugin)
