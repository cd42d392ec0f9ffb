// Loss formulas (loss_math.hpp).
#include "saelab/sae/loss_math.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "saelab/core/error.hpp"
#include "saelab/sae/math.hpp"

#include "sae/fused_kernels.hpp"

namespace saelab::loss_math {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_pair(const torch::Tensor& xhat, const torch::Tensor& x, const char* what) {
  SAELAB_CHECK(xhat.dim() == 2 && xhat.sizes() == x.sizes(), Error, what, ": reconstruction ", xhat.sizes(),
               " and input ", x.sizes(), " must both be [batch, d_in]");
}

struct AbsSumFn : public torch::autograd::Function<AbsSumFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& z) {
    ctx->saved_data["sizes"] = z.sizes().vec();
    // Latents after a ReLU are non-negative, and then Σ|z| = Σ z: one pass checks and sums. When it
    // finds a negative entry, that pass has already answered the sign question.
    std::optional<double> fused_sum;
    const bool fusable = fused::fusable({&z});
    if (fusable) fused_sum = fused::sum_if_nonnegative(z);
    const bool nonneg = fusable ? fused_sum.has_value() : z.numel() == 0 || z.min().item<double>() >= 0;
    ctx->saved_data["nonneg"] = nonneg;
    if (fused_sum) return {at::scalar_tensor(*fused_sum, z.options())};
    if (!nonneg) ctx->save_for_backward({z});
    return {nonneg ? z.sum() : z.abs().sum()};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto& g = grads[0];
    if (ctx->saved_data["nonneg"].toBool()) {
      return {g.expand(ctx->saved_data["sizes"].toIntVector())};
    }
    return {at::sgn(ctx->get_saved_variables()[0]) * g};
  }
};

}  // namespace

torch::Tensor mse(const torch::Tensor& xhat, const torch::Tensor& x) {
  check_pair(xhat, x, "mse");
  return (xhat - x).pow(2).sum(-1).mean();
}

torch::Tensor lp_sparsity(const torch::Tensor& z, double p, bool pth_root) {
  SAELAB_CHECK(z.dim() == 2, Error, "lp_sparsity: latents must be [batch, d_sae], got ", z.sizes());
  SAELAB_CHECK(p > 0 && std::isfinite(p), Error, "lp_sparsity: p = ", p, " must be finite and > 0");
  const torch::Tensor active = z > 0;
  // where() routes no gradient to the masked entries, so the infinite slope at 0 never appears.
  const torch::Tensor powered =
      at::where(active, at::where(active, z, at::ones_like(z)).pow(p), at::zeros_like(z));
  const torch::Tensor per_row = powered.sum(-1);  // [batch]
  return (pth_root ? per_row.pow(1.0 / p) : per_row).mean();
}

torch::Tensor prefix_mse(const std::vector<torch::Tensor>& prefix_reconstructions, const torch::Tensor& x) {
  torch::Tensor total = at::zeros({}, x.options());
  for (const auto& xhat : prefix_reconstructions) total = total + mse(xhat, x);
  return total;
}

torch::Tensor normalized_mse(const torch::Tensor& xhat, const torch::Tensor& x) {
  check_pair(xhat, x, "normalized_mse");
  auto denom = (x - x.mean(0, /*keepdim=*/true)).pow(2).sum();
  SAELAB_CHECK(denom.item<double>() > 0, Error, "normalized_mse: the batch of ", x.size(0),
               " inputs has zero variance (a single row or identical rows), so the normalised "
               "MSE is undefined; use a batch of distinct inputs or the plain mse loss");
  return (xhat - x).pow(2).sum() / denom.detach();
}

torch::Tensor l1_abs_sum(const torch::Tensor& z) {
  return AbsSumFn::apply(z)[0];
}

torch::Tensor l1(const torch::Tensor& z) {
  SAELAB_CHECK(z.dim() == 2, Error, "l1: latents must be [batch, d_sae], got ", z.sizes());
  return l1_abs_sum(z) / double(std::max<std::int64_t>(z.size(0), 1));
}

torch::Tensor l1_decoder_norm(const torch::Tensor& z, const torch::Tensor& W_dec) {
  SAELAB_CHECK(z.dim() == 2 && W_dec.dim() == 2 && z.size(1) == W_dec.size(0), Error,
               "l1_decoder_norm: latents ", z.sizes(), " and W_dec ", W_dec.sizes(),
               " must be [batch, d_sae] and [d_sae, d_in]");
  // Σ_b |z_bi| first (one pass over z, no [batch, d_sae] gradient for non-negative z), then the
  // weighted sum over latents.
  const bool nonneg = z.numel() == 0 || z.min().item<double>() >= 0;
  auto col = nonneg ? z.sum(0) : z.abs().sum(0);  // [d_sae]
  auto norms = sae_math::row_norms(W_dec);
  return (col * norms).sum() / double(std::max<std::int64_t>(z.size(0), 1));
}

torch::Tensor l0(const torch::Tensor& l0_estimate) {
  SAELAB_CHECK(l0_estimate.dim() == 1, Error, "l0: the L0 estimate must be [batch], got ",
               l0_estimate.sizes());
  return l0_estimate.mean();
}

AuxkResult auxk(const torch::Tensor& pre, const torch::Tensor& dead_mask, const torch::Tensor& residual,
                const torch::Tensor& W_dec, std::int64_t k_aux, bool normalize) {
  SAELAB_CHECK(pre.dim() == 2 && dead_mask.dim() == 1 && dead_mask.size(0) == pre.size(1), Error,
               "auxk: dead mask ", dead_mask.sizes(), " must be [d_sae] for pre-activations ", pre.sizes());
  SAELAB_CHECK(dead_mask.scalar_type() == at::kBool, Error, "auxk: dead mask must be bool, got ",
               dead_mask.scalar_type());
  SAELAB_CHECK(residual.dim() == 2 && residual.size(0) == pre.size(0) && residual.size(1) == W_dec.size(1) &&
                   W_dec.size(0) == pre.size(1),
               Error, "auxk: residual ", residual.sizes(), ", W_dec ", W_dec.sizes(), " and pre-activations ",
               pre.sizes(), " disagree");
  SAELAB_CHECK(k_aux >= 1, Error, "auxk: k_aux = ", k_aux, " must be ≥ 1");
  AuxkResult r;
  auto dead_idx = at::nonzero(dead_mask.to(pre.device())).squeeze(1);  // [num_dead]
  r.num_dead = dead_idx.numel();
  if (r.num_dead == 0) {
    r.loss = at::zeros({}, pre.options().requires_grad(false));
    return r;
  }
  r.k_aux = std::min(k_aux, r.num_dead);
  const double scale = std::min(double(r.num_dead) / double(k_aux), 1.0);
  auto pre_dead = pre.index_select(1, dead_idx);                             // [batch, num_dead]
  auto local = sae_math::topk_indices(pre_dead.detach(), r.k_aux);           // [batch, k]
  auto vals = pre_dead.gather(1, local);                                     // [batch, k]
  auto cols = dead_idx.index_select(0, local.reshape({-1})).view_as(local);  // [batch, k]
  auto ehat = sae_math::sparse_decode(sae_math::uniform_rows(vals, cols), W_dec);
  auto e = residual.detach();
  auto loss = (ehat - e).pow(2).sum(-1).mean();
  if (normalize) {
    auto denom = (e - e.mean(0, true)).pow(2).sum(-1).mean();
    // A residual without variance cannot be normalised; it is then left unnormalised.
    if (denom.item<double>() > 0) loss = loss / denom;
  }
  r.loss = loss * scale;
  return r;
}

}  // namespace saelab::loss_math
