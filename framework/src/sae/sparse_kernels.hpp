#pragma once
// Private to the framework: loops over compressed rows (sae_math::SparseRows) shared by the sparse
// decode and the sparse encoder backward. Row b owns entries off[b] .. off[b+1]-1.
#include <cstdint>

// The inner loops are AXPYs and dot products over d_in; -O2's cheap vectoriser cost model leaves
// them scalar because their trip count is not a multiple of the vector width.
#pragma GCC push_options
#pragma GCC optimize("O3")

namespace saelab::sae_math::kernels {

// out[b] = Σ_p v[p] W[cols[p]] for b in [b0, b1). W [*, d], out [batch, d].
template <class T>
void decode_rows(const T* v, const std::int64_t* cols, const std::int64_t* off, const T* W, std::int64_t d,
                 T* out, std::int64_t b0, std::int64_t b1) {
  for (std::int64_t b = b0; b < b1; ++b) {
    T* __restrict o = out + b * d;
    for (std::int64_t j = 0; j < d; ++j) o[j] = T(0);
    for (std::int64_t p = off[b]; p < off[b + 1]; ++p) {
      const T a = v[p];
      const T* __restrict w = W + cols[p] * d;
      for (std::int64_t j = 0; j < d; ++j) o[j] += a * w[j];
    }
  }
}

// gv[p] = g[row(p)] · W[cols[p]] for the rows in [b0, b1).
template <class T>
void dot_rows(const T* g, const std::int64_t* cols, const std::int64_t* off, const T* W, std::int64_t d,
              T* gv, std::int64_t b0, std::int64_t b1) {
  for (std::int64_t b = b0; b < b1; ++b) {
    const T* __restrict gr = g + b * d;
    for (std::int64_t p = off[b]; p < off[b + 1]; ++p) {
      const T* __restrict w = W + cols[p] * d;
      T acc = T(0);
      for (std::int64_t j = 0; j < d; ++j) acc += gr[j] * w[j];
      gv[p] = acc;
    }
  }
}

// dW[cols[p], c0:c1] += v[p] g[row(p), c0:c1] over all rows. Each thread owns a column slice of
// dW, so the scatter needs no atomics and its result does not depend on the thread count.
template <class T>
void scatter_rows_add(const T* v, const std::int64_t* cols, const std::int64_t* off, const T* g,
                      std::int64_t B, std::int64_t d, T* dW, std::int64_t c0, std::int64_t c1) {
  for (std::int64_t b = 0; b < B; ++b) {
    const T* __restrict gr = g + b * d;
    for (std::int64_t p = off[b]; p < off[b + 1]; ++p) {
      const T a = v[p];
      if (a == T(0)) continue;
      T* __restrict o = dW + cols[p] * d;
      for (std::int64_t j = c0; j < c1; ++j) o[j] += a * gr[j];
    }
  }
}

}  // namespace saelab::sae_math::kernels

#pragma GCC pop_options
