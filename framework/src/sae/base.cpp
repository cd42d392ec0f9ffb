// SaeBase (sae_base.hpp).
#include "saelab/sae/base.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "saelab/core/error.hpp"
#include "saelab/sae/math.hpp"

namespace saelab {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

}  // namespace

void add_common_sae_options(OptionSchema& s) {
  s.integer("d_in", -1,
            "input width (768 for GPT-2 small); auto: filled by the trainer from the activation "
            "store")
      .at_least(1)
      .autoable();
  s.integer("d_sae", 4096, "number of latents").at_least(1);
  s.choice("decoder_norm", "unit", {"unit", "free"},
           "unit: decoder rows kept at L2 norm 1 (gradient projection + renormalisation, "
           "Towards Monosemanticity); free: unconstrained");
  s.real("decoder_init_norm", 0.0,
         "initial L2 norm of every decoder row; 0 or auto: 1 with unit rows, 0.1 otherwise")
      .at_least(0)
      .autoable();
  s.choice("b_dec_init", "zero", {"zero", "mean", "geometric_median"},
           "initial decoder bias: zero, or the mean / geometric median of the trainer's sample");
}

SaeCommonConfig read_common_sae_options(const Options& o) {
  SaeCommonConfig c;
  if (o.is_auto("d_in") || o.integer("d_in") <= 0) {
    o.fail("d_in",
           "the input width is not set: the trainer fills it from the activation store; when "
           "building an SAE outside training set it to the model's width (768 for GPT-2 small)");
  }
  c.d_in = o.integer("d_in");
  c.d_sae = o.integer("d_sae");
  if (c.d_sae < 1) o.fail("d_sae", cat("d_sae = ", c.d_sae, " must be ≥ 1"));
  c.unit_norm_decoder = o.string("decoder_norm") == "unit";
  double init = o.real("decoder_init_norm");
  if (init < 0 || !std::isfinite(init)) {
    o.fail("decoder_init_norm", cat("decoder_init_norm = ", init, " must be a finite value ≥ 0"));
  }
  if (init == 0) init = c.unit_norm_decoder ? 1.0 : 0.1;
  if (c.unit_norm_decoder && std::abs(init - 1.0) > 1e-12) {
    o.fail("decoder_init_norm", cat("decoder_init_norm = ", init,
                                    " contradicts decoder_norm: unit (rows are kept at "
                                    "norm 1); use 1 (or 0 = auto), or decoder_norm: free"));
  }
  c.decoder_init_norm = init;
  c.b_dec_init = o.string("b_dec_init");
  return c;
}

SaeBase::SaeBase(const SaeCommonConfig& cfg, const PluginContext& ctx) : cfg_(cfg), device_(ctx.device) {
  SAELAB_CHECK(cfg.d_in > 0 && cfg.d_sae > 0, ConfigError, "SAE: d_in = ", cfg.d_in,
               " and d_sae = ", cfg.d_sae, " must both be positive");
  auto W_dec = sae_math::random_rows(cfg.d_sae, cfg.d_in, cfg.decoder_init_norm, ctx.seed);
  auto W_enc = W_dec.t().contiguous();  // before W_dec becomes a parameter: W_enc must be a leaf
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device_);
  W_enc_ = register_parameter("W_enc", W_enc.to(device_));
  W_dec_ = register_parameter("W_dec", W_dec.to(device_));
  b_enc_ = register_parameter("b_enc", at::zeros({cfg.d_sae}, opts));
  b_dec_ = register_parameter("b_dec", at::zeros({cfg.d_in}, opts));
}

void SaeBase::check_input(const torch::Tensor& x, const char* what) const {
  SAELAB_CHECK(x.defined() && x.dim() == 2 && x.size(1) == cfg_.d_in && x.is_floating_point(), FormatError,
               architecture(), " SAE ", what, ": input must be floating point [batch, ", cfg_.d_in,
               "] (d_in = ", cfg_.d_in, "), got ",
               x.defined() ? shape_str(x.sizes()) : std::string("an undefined tensor"),
               x.defined() ? cat(" ", x.scalar_type()) : std::string());
}

torch::Tensor SaeBase::pre_activations(const torch::Tensor& x) const {
  return at::addmm(b_enc_, x - b_dec_, W_enc_);
}

torch::Tensor SaeBase::decode(const torch::Tensor& latents) {
  SAELAB_CHECK(latents.dim() == 2 && latents.size(1) == cfg_.d_sae, FormatError, architecture(),
               " SAE decode: latents must be [batch, ", cfg_.d_sae, "] (d_sae), got ",
               shape_str(latents.sizes()));
  return at::addmm(b_dec_, latents, W_dec_);
}

TensorMap SaeBase::state() const {
  TensorMap m{{"W_enc", W_enc_.detach()},
              {"b_enc", b_enc_.detach()},
              {"W_dec", W_dec_.detach()},
              {"b_dec", b_dec_.detach()}};
  add_extra_state(m);
  return m;
}

torch::Tensor SaeBase::checked_state_tensor(const TensorMap& tensors, const std::string& name,
                                            at::IntArrayRef expected) const {
  auto it = tensors.find(name);
  SAELAB_CHECK(it != tensors.end(), FormatError, architecture(), " SAE state: tensor '", name,
               "' is missing (an ", architecture(), " SAE with d_in = ", cfg_.d_in, ", d_sae = ", cfg_.d_sae,
               " needs it with shape ", shape_str(expected), ")");
  const auto& t = it->second;
  SAELAB_CHECK(t.defined() && t.is_floating_point(), FormatError, architecture(), " SAE state: tensor '",
               name, "' must be floating point, got ",
               t.defined() ? cat(t.scalar_type()) : std::string("an undefined tensor"));
  SAELAB_CHECK(t.sizes() == expected, FormatError, architecture(), " SAE state: tensor '", name,
               "' has shape ", shape_str(t.sizes()), " but this SAE (d_in = ", cfg_.d_in,
               ", d_sae = ", cfg_.d_sae, ") needs ", shape_str(expected),
               "; check d_in/d_sae in the configuration against the file");
  SAELAB_CHECK(at::isfinite(t).all().item<bool>(), FormatError, architecture(), " SAE state: tensor '", name,
               "' contains NaN or infinite values");
  return t.to(W_enc_.options());
}

void SaeBase::load_state(const TensorMap& tensors) {
  std::vector<std::string> allowed{"W_enc", "b_enc", "W_dec", "b_dec"};
  for (auto& n : extra_state_names()) allowed.push_back(n);
  for (const auto& kv : tensors) {
    if (std::find(allowed.begin(), allowed.end(), kv.first) != allowed.end()) continue;
    std::string list;
    for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw FormatError(cat(architecture(), " SAE state: unexpected tensor '", kv.first, "'; an ",
                          architecture(), " SAE has exactly: ", list));
  }
  auto W_enc = checked_state_tensor(tensors, "W_enc", {cfg_.d_in, cfg_.d_sae});
  auto b_enc = checked_state_tensor(tensors, "b_enc", {cfg_.d_sae});
  auto W_dec = checked_state_tensor(tensors, "W_dec", {cfg_.d_sae, cfg_.d_in});
  auto b_dec = checked_state_tensor(tensors, "b_dec", {cfg_.d_in});
  load_extra_state(tensors);  // may throw: nothing is modified before all checks have passed
  at::NoGradGuard no_grad;
  W_enc_.copy_(W_enc);
  b_enc_.copy_(b_enc);
  W_dec_.copy_(W_dec);
  b_dec_.copy_(b_dec);
}

nlohmann::json SaeBase::extra_config() const {
  // The encoder sees x - b_dec; SAELens reads this key to do the same.
  return {{"apply_b_dec_to_input", true}};
}

void SaeBase::initialize_from_sample(const torch::Tensor& x) {
  check_input(x, "initialize_from_sample");
  SAELAB_CHECK(x.size(0) > 0, FormatError, architecture(),
               " SAE initialize_from_sample: the sample is empty");
  if (cfg_.b_dec_init == "zero") return;
  at::NoGradGuard no_grad;
  auto xs = x.to(b_dec_.options());
  b_dec_.copy_(cfg_.b_dec_init == "mean" ? xs.mean(0) : sae_math::geometric_median(xs));
}

void SaeBase::reinitialize_latents(const torch::Tensor& idx, const torch::Tensor& new_dirs, double enc_norm) {
  SAELAB_CHECK(idx.dim() == 1 && idx.scalar_type() == at::kLong, Error, architecture(),
               " SAE reinitialize_latents: indices must be int64 [n], got ", shape_str(idx.sizes()), " ",
               idx.scalar_type());
  SAELAB_CHECK(new_dirs.dim() == 2 && new_dirs.size(0) == idx.size(0) && new_dirs.size(1) == cfg_.d_in, Error,
               architecture(), " SAE reinitialize_latents: directions must be [", idx.size(0), ", ",
               cfg_.d_in, "], got ", shape_str(new_dirs.sizes()));
  SAELAB_CHECK(std::isfinite(enc_norm) && enc_norm >= 0, Error, architecture(),
               " SAE reinitialize_latents: enc_norm = ", enc_norm, " must be finite and ≥ 0");
  if (idx.numel() == 0) return;
  auto mm = at::aminmax(idx);
  const auto lo = std::get<0>(mm).item<std::int64_t>(), hi = std::get<1>(mm).item<std::int64_t>();
  SAELAB_CHECK(lo >= 0 && hi < cfg_.d_sae, Error, architecture(),
               " SAE reinitialize_latents: latent indices span [", lo, ", ", hi, "], allowed [0, ",
               cfg_.d_sae, ")");
  at::NoGradGuard no_grad;
  auto dirs = new_dirs.to(W_dec_.options());
  auto norms = sae_math::row_norms(dirs);
  SAELAB_CHECK((norms > 0).all().item<bool>(), Error, architecture(),
               " SAE reinitialize_latents: a direction has norm 0");
  auto unit = dirs / norms.unsqueeze(1);
  auto i = idx.to(device_);
  W_dec_.index_copy_(0, i, unit * (cfg_.unit_norm_decoder ? 1.0 : cfg_.decoder_init_norm));
  W_enc_.index_copy_(1, i, (unit * enc_norm).t());
  b_enc_.index_fill_(0, i, 0.0);
}

void SaeBase::before_optimizer_step() {
  if (cfg_.unit_norm_decoder && W_dec_.grad().defined())
    sae_math::project_out_row_parallel(W_dec_, W_dec_.grad());
}

void SaeBase::after_optimizer_step() {
  if (cfg_.unit_norm_decoder) sae_math::renormalize_rows(W_dec_, 1.0);
}

void SaeBase::fold_input_scale(double factor) {
  SAELAB_CHECK(std::isfinite(factor) && factor > 0, Error, architecture(),
               " SAE fold_input_scale: factor = ", factor, " must be finite and > 0");
  // Training saw f·x: pre = (f x - b_dec) W_enc + b_enc = (x - b_dec/f)(f W_enc) + b_enc, and the
  // reconstruction of x is x̂/f = z (W_dec/f) + b_dec/f. Latents and thresholds are unchanged.
  at::NoGradGuard no_grad;
  W_enc_.mul_(factor);
  W_dec_.div_(factor);
  b_dec_.div_(factor);
}

}  // namespace saelab
