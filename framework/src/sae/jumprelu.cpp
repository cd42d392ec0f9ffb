// JumpReLU and its Heaviside step with the rectangle-kernel straight-through estimator
// (Rajamanoharan et al. 2024, "Jumping Ahead", eq. 11-12).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "saelab/core/error.hpp"
#include "saelab/sae/math.hpp"

namespace saelab::sae_math {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// K((pre - θ)/ε) with K(u) = 1[-1/2 < u < 1/2], as pre's dtype.
torch::Tensor rectangle(const torch::Tensor& pre, const torch::Tensor& threshold, double bandwidth) {
  auto u = (pre - threshold) / bandwidth;
  return ((u > -0.5) & (u < 0.5)).to(pre.scalar_type());
}

// Sums a [..., d_sae] tensor down to [d_sae], the shape of the threshold.
torch::Tensor sum_to_threshold(const torch::Tensor& t) {
  return t.reshape({-1, t.size(-1)}).sum(0);
}

void check_threshold(const torch::Tensor& pre, const torch::Tensor& threshold, double bandwidth,
                     const char* what) {
  SAELAB_CHECK(pre.dim() >= 1 && threshold.dim() == 1 && threshold.size(0) == pre.size(-1), Error, what,
               ": threshold ", threshold.sizes(), " must be [d_sae] for pre-activations ", pre.sizes());
  SAELAB_CHECK(bandwidth > 0, Error, what, ": bandwidth = ", bandwidth, " must be > 0");
}

struct JumpReluFn : public torch::autograd::Function<JumpReluFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& pre, const torch::Tensor& threshold,
                               double bandwidth) {
    ctx->saved_data["bandwidth"] = bandwidth;
    ctx->save_for_backward({pre, threshold});
    return {pre * (pre > threshold).to(pre.scalar_type())};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& pre = saved[0];
    const auto& th = saved[1];
    const double bw = ctx->saved_data["bandwidth"].toDouble();
    const auto& g = grads[0];
    torch::Tensor g_pre, g_th;
    if (ctx->needs_input_grad(0)) g_pre = g * (pre > th).to(g.scalar_type());
    if (ctx->needs_input_grad(1)) g_th = sum_to_threshold(rectangle(pre, th, bw) * g) * (-th / bw);
    return {g_pre, g_th, torch::Tensor()};
  }
};

struct HeavisideSteFn : public torch::autograd::Function<HeavisideSteFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& pre, const torch::Tensor& threshold,
                               double bandwidth) {
    ctx->saved_data["bandwidth"] = bandwidth;
    ctx->save_for_backward({pre, threshold});
    return {(pre > threshold).to(pre.scalar_type())};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const double bw = ctx->saved_data["bandwidth"].toDouble();
    torch::Tensor g_th;
    if (ctx->needs_input_grad(1))
      g_th = sum_to_threshold(rectangle(saved[0], saved[1], bw) * grads[0]) * (-1.0 / bw);
    // No gradient reaches the pre-activations: the L0 penalty trains only the thresholds.
    return {torch::Tensor(), g_th, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor jumprelu(const torch::Tensor& pre, const torch::Tensor& threshold, double bandwidth) {
  check_threshold(pre, threshold, bandwidth, "jumprelu");
  return JumpReluFn::apply(pre, threshold, bandwidth)[0];
}

torch::Tensor heaviside_ste(const torch::Tensor& pre, const torch::Tensor& threshold, double bandwidth) {
  check_threshold(pre, threshold, bandwidth, "heaviside_ste");
  return HeavisideSteFn::apply(pre, threshold, bandwidth)[0];
}

}  // namespace saelab::sae_math
