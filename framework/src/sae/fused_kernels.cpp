// One-pass CPU loops for the SAE training step (fused_kernels.hpp).
#include "sae/fused_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

#include "saelab/core/error.hpp"

// The loops live in free functions over __restrict pointers with scalars by value: inside a
// lambda that captures by reference, the compiler must assume a store through a float pointer may
// change a captured scalar, and it neither hoists nor vectorises. This file is built with -O3,
// -fno-math-errno and -fno-trapping-math (framework/CMakeLists.txt says why).
namespace saelab::fused {
namespace {

// Rows per reduction block and elements per flat block. Fixed, so that sums are grouped the same
// way whatever the thread count.
constexpr std::int64_t kRowBlock = 256;
constexpr std::int64_t kFlatBlock = std::int64_t(1) << 16;

std::int64_t blocks_of(std::int64_t n, std::int64_t block) {
  return (n + block - 1) / block;
}

// Calls f(i) for every block i in [0, n), spread over ATen's intra-op threads.
template <class F>
void for_each_block(std::int64_t n, const F& f) {
  at::parallel_for(0, n, 1, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t i = b0; i < b1; ++i) f(i);
  });
}

// ---- loops over one row or one flat range --------------------------------------------------------

void bias_relu_row(float* __restrict p, const float* __restrict bias, float* __restrict z, std::int64_t d) {
  for (std::int64_t j = 0; j < d; ++j) {
    const float v = p[j] + bias[j];
    p[j] = v;
    z[j] = v < 0.0f ? 0.0f : v;  // NaN stays NaN, as clamp_min keeps it
  }
}

// Both arms of each select are computed values, not loads: GCC will not if-convert a load that
// only one arm makes, and a branch on the sign of z mispredicts half the time (z is half zeros).
void relu_backward_row(float* __restrict g, const float* __restrict z, const float* __restrict c,
                       std::int64_t d) {
  for (std::int64_t j = 0; j < d; ++j) {
    const float v = g[j] + c[j];
    g[j] = z[j] > 0.0f ? v : 0.0f;
  }
}

void relu_backward_row_sum(float* __restrict g, const float* __restrict z, const float* __restrict c,
                           float* __restrict acc, std::int64_t d) {
  for (std::int64_t j = 0; j < d; ++j) {
    const float gc = g[j] + c[j];
    const float v = z[j] > 0.0f ? gc : 0.0f;
    g[j] = v;
    acc[j] += v;
  }
}

void count_row(const float* __restrict z, std::int32_t* __restrict cnt, std::int64_t d) {
  for (std::int64_t j = 0; j < d; ++j) cnt[j] += z[j] != 0.0f ? 1 : 0;
}

struct SumSign {
  double sum;
  bool negative;
};

SumSign sum_sign(const float* __restrict z, std::int64_t n) {
  // Eight float lanes (one vector pair), flushed into a double every 1024 elements: vectorised
  // without reassociating a single running sum, and no lane adds more than 128 floats.
  constexpr std::int64_t kFlush = 1024;
  double total = 0.0;
  std::int32_t neg[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (std::int64_t i0 = 0; i0 < n; i0 += kFlush) {
    const std::int64_t i1 = std::min(n, i0 + kFlush);
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
      for (int k = 0; k < 8; ++k) {
        lane[k] += z[i + k];
        neg[k] |= z[i + k] < 0.0f ? 1 : 0;
      }
    }
    for (; i < i1; ++i) {
      lane[0] += z[i];
      neg[0] |= z[i] < 0.0f ? 1 : 0;
    }
    for (float l : lane) total += double(l);
  }
  int any = 0;
  for (std::int32_t x : neg) any |= x;
  return {total, any != 0};
}

// a·b over n floats in eight lanes (vectorised without reassociating one running sum).
float dot8(const float* __restrict a, const float* __restrict b, std::int64_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += a[i + k] * b[i + k];
  for (; i < n; ++i) lane[0] += a[i] * b[i];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

void project_out_row(const float* __restrict w, float* __restrict g, std::int64_t d) {
  const float sq = std::max(dot8(w, w, d), 1e-30f);
  const float coef = dot8(g, w, d) / sq;
  for (std::int64_t j = 0; j < d; ++j) g[j] -= w[j] * coef;
}

struct AdamFloats {
  float b1, b2, a1, a2, eps, neg_step, bias2_sqrt;
};

// The formula of the ATen formulation in trainer_adam.cpp, with its scalars rounded to float the
// same way. ATen vectorises some of its ops with FMA and finishes with scalar tails, so the two
// agree to float rounding, not bit for bit (tests/trainer/parts_test.cpp checks 1e-6).
void adam_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                std::int64_t n, const AdamFloats k) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * k.b1 + k.a1 * gi;
    const float vi = v[i] * k.b2 + k.a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] + k.neg_step * (mi / (std::sqrt(vi) / k.bias2_sqrt + k.eps));
  }
}

void check_matrix(const at::Tensor& t, std::int64_t rows, std::int64_t cols, const char* what) {
  SAELAB_CHECK(fusable({&t}) && t.dim() == 2 && t.size(0) == rows && t.size(1) == cols, Error, what,
               ": expected a contiguous float32 CPU tensor [", rows, ", ", cols, "], got ", t.sizes(), " ",
               t.scalar_type(), " on ", t.device(), " (contiguous: ", t.is_contiguous(), ")");
}

}  // namespace

bool fusable(std::initializer_list<const at::Tensor*> tensors) {
  for (const at::Tensor* t : tensors) {
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous() ||
        t->is_sparse())
      return false;
  }
  return true;
}

at::Tensor repeated_row(const at::Tensor& t) {
  if (!t.defined() || t.dim() != 2 || t.size(0) == 0 || t.stride(0) != 0 || !t.device().is_cpu() ||
      t.scalar_type() != at::kFloat)
    return {};
  return t.select(0, 0).contiguous();  // [d]; copies only when the row itself is strided (a scalar)
}

void add_bias_relu(at::Tensor& pre, const at::Tensor& b, at::Tensor& z) {
  SAELAB_CHECK(pre.dim() == 2, Error, "add_bias_relu: pre-activations must be 2-D, got ", pre.sizes());
  const std::int64_t B = pre.size(0), d = pre.size(1);
  check_matrix(pre, B, d, "add_bias_relu: pre-activations");
  check_matrix(z, B, d, "add_bias_relu: latents");
  SAELAB_CHECK(fusable({&b}) && b.dim() == 1 && b.size(0) == d, Error, "add_bias_relu: bias ", b.sizes(),
               " must be a contiguous float32 CPU tensor [", d, "]");
  float* P = pre.data_ptr<float>();
  float* Z = z.data_ptr<float>();
  const float* bias = b.data_ptr<float>();
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(d, 1));
  at::parallel_for(0, B, grain, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) bias_relu_row(P + r * d, bias, Z + r * d, d);
  });
}

at::Tensor relu_backward_add(at::Tensor& g, const at::Tensor& z, const at::Tensor& c, bool want_column_sums) {
  SAELAB_CHECK(z.dim() == 2, Error, "relu_backward_add: latents must be 2-D, got ", z.sizes());
  const std::int64_t B = z.size(0), d = z.size(1);
  check_matrix(g, B, d, "relu_backward_add: gradient");
  check_matrix(z, B, d, "relu_backward_add: latents");
  SAELAB_CHECK(fusable({&c}) && c.dim() == 1 && c.size(0) == d, Error, "relu_backward_add: the row added, ",
               c.sizes(), ", must be a contiguous float32 CPU tensor [", d, "]");
  const float* C = c.data_ptr<float>();
  const std::int64_t nblocks = blocks_of(B, kRowBlock);
  std::vector<float> partial(want_column_sums ? std::size_t(nblocks * d) : 0);  // [nblocks, d]
  float* G = g.data_ptr<float>();
  const float* Zp = z.data_ptr<float>();
  for_each_block(nblocks, [&](std::int64_t blk) {
    float* acc = want_column_sums ? partial.data() + blk * d : nullptr;
    if (acc) std::fill(acc, acc + d, 0.0f);
    const std::int64_t r1 = std::min(B, (blk + 1) * kRowBlock);
    for (std::int64_t r = blk * kRowBlock; r < r1; ++r) {
      if (acc) {
        relu_backward_row_sum(G + r * d, Zp + r * d, C, acc, d);
      } else {
        relu_backward_row(G + r * d, Zp + r * d, C, d);
      }
    }
  });
  if (!want_column_sums) return {};
  at::Tensor out = at::empty({d}, z.options());  // [d]
  float* o = out.data_ptr<float>();
  for (std::int64_t j = 0; j < d; ++j) {
    double s = 0.0;
    for (std::int64_t blk = 0; blk < nblocks; ++blk) s += partial[std::size_t(blk * d + j)];
    o[j] = float(s);
  }
  return out;
}

std::optional<double> sum_if_nonnegative(const at::Tensor& z) {
  SAELAB_CHECK(fusable({&z}), Error, "sum_if_nonnegative: expected a contiguous float32 CPU tensor, got ",
               z.scalar_type(), " on ", z.device());
  const std::int64_t n = z.numel();
  const std::int64_t nblocks = blocks_of(n, kFlatBlock);
  std::vector<double> sums(std::size_t(nblocks), 0.0);
  std::vector<char> negative(std::size_t(nblocks), 0);
  const float* Zp = z.data_ptr<float>();
  for_each_block(nblocks, [&](std::int64_t blk) {
    const std::int64_t i0 = blk * kFlatBlock, i1 = std::min(n, i0 + kFlatBlock);
    const SumSign r = sum_sign(Zp + i0, i1 - i0);
    sums[std::size_t(blk)] = r.sum;
    negative[std::size_t(blk)] = char(r.negative);
  });
  double total = 0.0;
  for (std::int64_t blk = 0; blk < nblocks; ++blk) {
    if (negative[std::size_t(blk)]) return std::nullopt;
    total += sums[std::size_t(blk)];
  }
  return total;
}

at::Tensor count_nonzero_columns(const at::Tensor& z) {
  SAELAB_CHECK(z.dim() == 2, Error, "count_nonzero_columns: latents must be 2-D, got ", z.sizes());
  const std::int64_t B = z.size(0), d = z.size(1);
  check_matrix(z, B, d, "count_nonzero_columns: latents");
  const std::int64_t nblocks = blocks_of(B, kRowBlock);
  std::vector<std::int32_t> partial(std::size_t(nblocks * d), 0);  // [nblocks, d]; ≤ kRowBlock each
  const float* Zp = z.data_ptr<float>();
  for_each_block(nblocks, [&](std::int64_t blk) {
    std::int32_t* cnt = partial.data() + blk * d;
    const std::int64_t r1 = std::min(B, (blk + 1) * kRowBlock);
    for (std::int64_t r = blk * kRowBlock; r < r1; ++r) count_row(Zp + r * d, cnt, d);
  });
  at::Tensor out = at::zeros({d}, at::kLong);  // [d]
  std::int64_t* o = out.data_ptr<std::int64_t>();
  for (std::int64_t blk = 0; blk < nblocks; ++blk)
    for (std::int64_t j = 0; j < d; ++j) o[j] += partial[std::size_t(blk * d + j)];
  return out;
}

void project_out_rows(const at::Tensor& W, at::Tensor& G) {
  SAELAB_CHECK(W.dim() == 2, Error, "project_out_rows: W must be [rows, d], got ", W.sizes());
  const std::int64_t rows = W.size(0), d = W.size(1);
  check_matrix(W, rows, d, "project_out_rows: W");
  check_matrix(G, rows, d, "project_out_rows: gradient");
  const float* Wp = W.data_ptr<float>();
  float* Gp = G.data_ptr<float>();
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(d, 1));
  at::parallel_for(0, rows, grain, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) project_out_row(Wp + r * d, Gp + r * d, d);
  });
}

void adam_update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v,
                 const AdamCoefficients& k) {
  SAELAB_CHECK(
      fusable({&p, &g, &m, &v}) && g.sizes() == p.sizes() && m.sizes() == p.sizes() && v.sizes() == p.sizes(),
      Error, "adam_update: parameter ", p.sizes(), ", gradient ", g.sizes(), " and moments ", m.sizes(), ", ",
      v.sizes(), " must be contiguous float32 CPU tensors of one shape");
  float* P = p.data_ptr<float>();
  const float* Gp = g.data_ptr<float>();
  float* M = m.data_ptr<float>();
  float* V = v.data_ptr<float>();
  const AdamFloats f{float(k.beta1), float(k.beta2),      float(1.0 - k.beta1), float(1.0 - k.beta2),
                     float(k.eps),   float(-k.step_size), float(k.bias2_sqrt)};
  at::parallel_for(0, p.numel(), kFlatBlock / 4, [&](std::int64_t i0, std::int64_t i1) {
    adam_range(P + i0, Gp + i0, M + i0, V + i0, i1 - i0, f);
  });
}

}  // namespace saelab::fused
