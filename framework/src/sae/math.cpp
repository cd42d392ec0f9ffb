// Decoder-row utilities and initialisation helpers of sae_math.hpp.
#include "saelab/sae/math.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "saelab/core/error.hpp"
#include "sae/fused_kernels.hpp"

namespace saelab::sae_math {

torch::Tensor TensorPool::take(const std::string& slot, at::IntArrayRef sizes, const at::TensorOptions& o) {
  auto& buf = buffers_[slot];
  const bool reusable = buf.defined() && buf.use_count() == 1 && buf.storage().use_count() == 1 &&
                        buf.sizes() == sizes && buf.dtype() == o.dtype() && buf.device() == o.device();
  if (!reusable) buf = at::empty(sizes, o);
  return at::empty({0}, o).set_(buf.storage(), 0, sizes, buf.strides());
}

torch::Tensor take(const PoolPtr& pool, const std::string& slot, at::IntArrayRef sizes,
                   const at::TensorOptions& o) {
  return pool ? pool->take(slot, sizes, o) : at::empty(sizes, o);
}

torch::Tensor row_norms(const torch::Tensor& W) {
  SAELAB_CHECK(W.dim() == 2, Error, "row_norms: expected a matrix [rows, d], got ", W.sizes());
  return at::linalg_vector_norm(W, 2, {1}, /*keepdim=*/false, c10::nullopt);
}

void project_out_row_parallel(const torch::Tensor& W, const torch::Tensor& grad) {
  at::NoGradGuard no_grad;
  SAELAB_CHECK(W.sizes() == grad.sizes(), Error, "project_out_row_parallel: W ", W.sizes(),
               " and its gradient ", grad.sizes(), " differ in shape");
  // g -= (g·w / |w|²) w, which equals g -= (g·ŵ) ŵ without normalising W first.
  if (fused::fusable({&W, &grad})) {
    torch::Tensor g = grad;
    fused::project_out_rows(W, g);
    return;
  }
  auto sq = (W * W).sum(1, /*keepdim=*/true).clamp_min_(1e-30);
  auto coef = (grad * W).sum(1, /*keepdim=*/true).div_(sq);
  grad.sub_(W * coef);
}

void renormalize_rows(const torch::Tensor& W, double norm) {
  at::NoGradGuard no_grad;
  auto n = row_norms(W).clamp_min_(1e-30).unsqueeze(1);
  W.mul_(n.reciprocal().mul_(norm));
}

torch::Tensor random_rows(std::int64_t rows, std::int64_t d, double norm, std::uint64_t seed) {
  SAELAB_CHECK(rows > 0 && d > 0, Error, "random_rows: rows (", rows, ") and d (", d, ") must be positive");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto W = at::randn({rows, d}, gen, at::TensorOptions().dtype(at::kFloat));
  renormalize_rows(W, norm);
  return W;
}

torch::Tensor geometric_median(const torch::Tensor& x, std::int64_t max_iter, double tol) {
  SAELAB_CHECK(x.dim() == 2 && x.size(0) > 0, Error,
               "geometric_median: expected a non-empty sample [n, d], got ", x.sizes());
  at::NoGradGuard no_grad;
  auto xd = x.to(at::kDouble);
  auto y = xd.mean(0);
  for (std::int64_t it = 0; it < max_iter; ++it) {
    // Weiszfeld: weights 1/distance; a point that coincides with y gets a large finite weight.
    auto dist = at::linalg_vector_norm(xd - y, 2, {1}, false, c10::nullopt).clamp_min_(1e-12);
    auto w = dist.reciprocal();
    auto next = (xd * w.unsqueeze(1)).sum(0) / w.sum();
    double step = (next - y).norm().item<double>();
    double scale = 1.0 + next.norm().item<double>();
    y = next;
    if (step < tol * scale) break;
  }
  return y.to(x.scalar_type());
}

}  // namespace saelab::sae_math
