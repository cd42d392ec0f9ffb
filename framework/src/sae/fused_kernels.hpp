#pragma once
// Private to the framework: one-pass CPU loops for the element-wise work of an SAE training step.
//
// Why: a [batch, d_sae] tensor is 67 MB at 4096 x 4096 and 400 MB at 4096 x 24576, so every extra
// pass ATen makes over it (a bias copied into a GEMM output, a ReLU mask, a column sum, a min scan
// before a sum) costs as much as a tenth of a GEMM. Adam written with ATen ops makes about eight
// passes over each parameter; here it makes one.
//
// Every function takes contiguous float32 CPU tensors only; callers check fusable() and keep their
// ATen formulation for anything else (CUDA, other dtypes, strided views). Reductions are summed per
// fixed block of rows or elements and the blocks in order, so results do not depend on the thread
// count.
#include <initializer_list>
#include <optional>

#include <ATen/ATen.h>

namespace saelab::fused {

// True when every tensor is a defined, contiguous float32 CPU tensor.
bool fusable(std::initializer_list<const at::Tensor*> tensors);

// When t [rows, d] repeats one row in memory (stride 0 along rows, as autograd passes the gradient
// of a sum over the batch: Σ z gives one value everywhere, Σ_b z_bj · w_j a row w), that row as
// a contiguous float32 [d]; an undefined tensor otherwise.
at::Tensor repeated_row(const at::Tensor& t);

// pre [batch, d] += b [d] (broadcast over rows); z [batch, d] = max(pre, 0).
void add_bias_relu(at::Tensor& pre, const at::Tensor& b, at::Tensor& z);

// g [batch, d] = (z > 0) ? g + c : 0 in place, c [d] broadcast over rows (the ReLU backward with a
// gradient that is the same for every row added before the mask). Returns Σ_b g[b, :] [d] when
// want_column_sums, else an undefined tensor.
at::Tensor relu_backward_add(at::Tensor& g, const at::Tensor& z, const at::Tensor& c, bool want_column_sums);

// Σ z over all elements when no element is negative, in one pass; nullopt when one is. A NaN is
// not negative: it propagates into the sum, where the trainer's finiteness check sees it.
std::optional<double> sum_if_nonnegative(const at::Tensor& z);

// Number of non-zero entries in each column of z [batch, d], as int64 [d].
at::Tensor count_nonzero_columns(const at::Tensor& z);

// For every row r of W [rows, d] and its gradient G [rows, d]: G[r] -= (G[r]·W[r] / |W[r]|²) W[r]
// in place (removes the gradient component that would change the row's norm).
void project_out_rows(const at::Tensor& W, at::Tensor& G);

// One Adam update of p with gradient g and moments m, v (all the same shape), in place:
//   m ← b1 m + (1 − b1) g,  v ← b2 v + (1 − b2) g²,  p ← p − step_size · m / (sqrt(v) / bias2_sqrt + eps)
// The coefficients are doubles, as the optimiser holds them; each is rounded to float once, as ATen
// rounds a Scalar for a float32 kernel.
struct AdamCoefficients {
  double beta1, beta2, eps, step_size, bias2_sqrt;
};
void adam_update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamCoefficients& k);

}  // namespace saelab::fused
