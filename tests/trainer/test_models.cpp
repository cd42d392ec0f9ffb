#include "test_models.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "saelab/core/error.hpp"

namespace saelab::test {

TinySae::TinySae(std::int64_t d_in, std::int64_t d_sae, std::int64_t k, std::uint64_t seed)
    : d_in_(d_in), d_sae_(d_sae), k_(k) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor dec = at::normal(0.0, 1.0, {d_sae, d_in}, gen);
  dec = dec / dec.norm(2, {1}, true);
  W_dec = register_parameter("W_dec", dec.clone());
  W_enc = register_parameter("W_enc", dec.t().clone());
  b_enc = register_parameter("b_enc", torch::zeros({d_sae}));
  b_dec = register_parameter("b_dec", torch::zeros({d_in}));
}

SaeOutput TinySae::forward(const torch::Tensor& x) {
  SaeOutput out;
  out.pre_activations = (x - b_dec).matmul(W_enc) + b_enc;
  torch::Tensor z = torch::relu(out.pre_activations);
  if (k_ > 0) {
    auto top = z.topk(k_, 1);
    z = torch::zeros_like(z).scatter(1, std::get<1>(top), std::get<0>(top));
  }
  out.latents = z;
  out.reconstruction = z.matmul(W_dec) + b_dec;
  return out;
}

TensorMap TinySae::state() const {
  return {{"W_enc", W_enc}, {"b_enc", b_enc}, {"W_dec", W_dec}, {"b_dec", b_dec}};
}

void TinySae::load_state(const TensorMap& tensors) {
  torch::NoGradGuard g;
  for (auto& [name, p] : std::map<std::string, torch::Tensor>{
           {"W_enc", W_enc}, {"b_enc", b_enc}, {"W_dec", W_dec}, {"b_dec", b_dec}}) {
    auto it = tensors.find(name);
    SAELAB_CHECK(it != tensors.end(), FormatError, "missing ", name);
    p.copy_(it->second);
  }
}

nlohmann::json TinySae::extra_config() const {
  return k_ > 0 ? nlohmann::json{{"k", k_}} : nlohmann::json::object();
}

void TinySae::reinitialize_latents(const torch::Tensor& idx, const torch::Tensor& new_dirs, double enc_norm) {
  torch::NoGradGuard g;
  torch::Tensor unit = new_dirs / new_dirs.norm(2, {1}, true);
  W_dec.index_copy_(0, idx, unit);
  W_enc.index_copy_(1, idx, (unit * enc_norm).t());
  b_enc.index_fill_(0, idx, 0.0);
}

void TinySae::before_optimizer_step() {
  // Remove the gradient component parallel to each (unit) decoder row.
  torch::NoGradGuard g;
  if (!W_dec.grad().defined()) return;
  torch::Tensor parallel = (W_dec.grad() * W_dec).sum(1, true);
  W_dec.mutable_grad().sub_(parallel * W_dec);
}

void TinySae::after_optimizer_step() {
  torch::NoGradGuard g;
  W_dec.div_(W_dec.norm(2, {1}, true).clamp_min(1e-12));
}

void TinySae::fold_input_scale(double f) {
  torch::NoGradGuard g;
  W_enc.mul_(f);
  W_dec.div_(f);
  b_dec.div_(f);
}

torch::Tensor MseLoss::compute(const LossContext& ctx) {
  return (ctx.out.reconstruction - ctx.x).pow(2).sum(1).mean();
}

torch::Tensor L1Loss::compute(const LossContext& ctx) {
  const double ramp = warmup_ > 0 ? std::min(1.0, ctx.progress.fraction() / warmup_) : 1.0;
  torch::Tensor weighted = ctx.out.latents.abs() * ctx.sae.decoder_weight().norm(2, {1});
  return coefficient_ * ramp * weighted.sum(1).mean();
}

torch::Tensor PoisonLoss::compute(const LossContext& ctx) {
  const double v = ctx.progress.step == at_ ? std::nan("") : 0.0;
  return torch::full({}, v) + 0.0 * ctx.out.reconstruction.sum();
}

}  // namespace saelab::test
