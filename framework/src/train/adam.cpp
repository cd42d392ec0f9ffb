#include <cmath>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/train/adam.hpp"

#include "sae/fused_kernels.hpp"

namespace saelab {

Adam::Adam(std::map<std::string, torch::Tensor> params, AdamConfig config) : config_(config) {
  for (auto& [name, p] : params) {
    SAELAB_CHECK(p.defined(), Error, "Adam: parameter '", name, "' is undefined");
    slots_[name] = Slot{p, torch::zeros_like(p), torch::zeros_like(p)};
  }
}

void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double bias1 = 1.0 - std::pow(b1, double(t_));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, double(t_)));
  for (auto& [name, s] : slots_) {
    const torch::Tensor& g = s.param.grad();
    if (!g.defined()) continue;
    if (fused::fusable({&s.param, &g, &s.m, &s.v})) {
      fused::adam_update(s.param, g, s.m, s.v, {b1, b2, config_.eps, lr / bias1, bias2_sqrt});
      continue;
    }
    s.m.mul_(b1).add_(g, 1.0 - b1);
    s.v.mul_(b2).addcmul_(g, g, 1.0 - b2);
    torch::Tensor denom = s.v.sqrt();
    denom.div_(bias2_sqrt).add_(config_.eps);
    s.param.addcdiv_(s.m, denom, -lr / bias1);
  }
}

void Adam::reset_slices(const std::string& name, std::int64_t dim, const torch::Tensor& index) {
  auto it = slots_.find(name);
  SAELAB_CHECK(it != slots_.end(), Error, "Adam: no parameter named '", name, "'");
  torch::NoGradGuard no_grad;
  const torch::Tensor i = index.to(it->second.m.device());
  it->second.m.index_fill_(dim, i, 0.0);
  it->second.v.index_fill_(dim, i, 0.0);
}

std::map<std::string, torch::Tensor> Adam::state() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, s] : slots_) {
    out["adam.m." + name] = s.m;
    out["adam.v." + name] = s.v;
  }
  out["adam.t"] = torch::tensor({t_}, torch::kInt64);
  return out;
}

namespace {
const torch::Tensor& require_tensor(const std::map<std::string, torch::Tensor>& tensors,
                                    const std::string& key, const torch::Tensor& like,
                                    const std::string& where) {
  auto it = tensors.find(key);
  SAELAB_CHECK(it != tensors.end(), FormatError, where, ": tensor '", key,
               "' is missing (the checkpoint does not match this SAE)");
  SAELAB_CHECK(it->second.sizes() == like.sizes(), FormatError, where, ": tensor '", key, "' has shape ",
               it->second.sizes(), ", expected ", like.sizes());
  return it->second;
}
}  // namespace

void Adam::load_state(const std::map<std::string, torch::Tensor>& tensors, const std::string& where) {
  torch::NoGradGuard no_grad;
  for (auto& [name, s] : slots_) {
    s.m.copy_(require_tensor(tensors, "adam.m." + name, s.m, where));
    s.v.copy_(require_tensor(tensors, "adam.v." + name, s.v, where));
  }
  const torch::Tensor& t = require_tensor(tensors, "adam.t", torch::zeros({1}), where);
  t_ = t.to(torch::kInt64).item<std::int64_t>();
  SAELAB_CHECK(t_ >= 0, FormatError, where, ": adam.t is ", t_, ", expected ≥ 0");
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  double sq = 0.0;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const double n = p.grad().norm().item<double>();
    sq += n * n;
  }
  const double norm = std::sqrt(sq);
  if (max_norm > 0.0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
    }
  }
  return norm;
}

}  // namespace saelab
