#pragma once
// Shared math of the SAE architecture plugins (standard/ReLU, TopK, BatchTopK, JumpReLU), so that
// the four plugins, which may not depend on each other, do not repeat it. Every function here is
// pure apart from the ones documented as in place.
//
// Layouts: x [batch, d_in], W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in].
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <ATen/core/ivalue.h>
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::sae_math {

// ---- buffer reuse -----------------------------------------------------------------------------

// Large per-step buffers ([batch, d_sae] activations and gradients, weight gradients) kept from
// one step to the next. A fresh allocation of that size is mmap-ed and page-faulted in on every
// step, which costs several times a pass over the data. take() hands out a slot's buffer again
// only when nothing else references its storage (the previous step's tensors, including a
// gradient left in a parameter's .grad, are gone); otherwise it allocates a new one. The tensor
// returned is a separate tensor object sharing the buffer's storage, so autograd can take it over
// as a parameter's .grad.
class SAELAB_API TensorPool : public torch::CustomClassHolder {
 public:
  torch::Tensor take(const std::string& slot, at::IntArrayRef sizes, const at::TensorOptions& o);
  void clear() { buffers_.clear(); }

 private:
  std::map<std::string, torch::Tensor> buffers_;
};
using PoolPtr = c10::intrusive_ptr<TensorPool>;

// A new tensor of `sizes` from `pool`'s `slot`, or a plain allocation when pool is null.
SAELAB_API torch::Tensor take(const PoolPtr& pool, const std::string& slot, at::IntArrayRef sizes,
                              const at::TensorOptions& o);

// ---- decoder rows -----------------------------------------------------------------------------

// L2 norm of every row: W [rows, d] -> [rows].
SAELAB_API torch::Tensor row_norms(const torch::Tensor& W);

// Removes from grad [rows, d] its component along each row of W (in place, no autograd), so that a
// gradient step changes the row's direction and not, to first order, its norm. Towards
// Monosemanticity's constraint, used before the optimiser step when rows are kept at unit norm.
SAELAB_API void project_out_row_parallel(const torch::Tensor& W, const torch::Tensor& grad);

// Rescales every row of W to L2 norm `norm` (in place, no autograd).
SAELAB_API void renormalize_rows(const torch::Tensor& W, double norm);

// rows random directions in R^d, each of L2 norm `norm` ([rows, d], float32 on CPU), drawn from
// an isotropic Gaussian with a generator seeded by `seed`: the same seed gives the same rows.
SAELAB_API torch::Tensor random_rows(std::int64_t rows, std::int64_t d, double norm, std::uint64_t seed);

// Geometric median of the rows of x [n, d] by Weiszfeld's iteration (computed in float64;
// returned in x's dtype) -> [d]. Stops when the step is below tol * (1 + |median|).
SAELAB_API torch::Tensor geometric_median(const torch::Tensor& x, std::int64_t max_iter = 200,
                                          double tol = 1e-7);

// ---- the standard (ReLU) SAE, fused -----------------------------------------------------------

struct SAELAB_API ReluSaeResult {
  torch::Tensor latents;          // [batch, d_sae] ReLU(pre)
  torch::Tensor reconstruction;   // [batch, d_in]  latents W_dec + b_dec
  torch::Tensor pre_activations;  // [batch, d_sae] (x - b_dec) W_enc + b_enc
};

// z = ReLU((x - b_dec) W_enc + b_enc), x̂ = z W_dec + b_dec as one autograd node with a
// hand-written backward: five GEMMs, the ReLU mask applied in place, no gradient computed for an
// input that does not need one. A gradient of the latents that is a broadcast constant (the L1
// penalty of non-negative latents, see l1_abs_sum in loss_math.hpp) is never materialised.
SAELAB_API ReluSaeResult relu_sae(const torch::Tensor& x, const torch::Tensor& W_enc,
                                  const torch::Tensor& b_enc, const torch::Tensor& W_dec,
                                  const torch::Tensor& b_dec, const PoolPtr& pool = {});

// ---- sparse latents ---------------------------------------------------------------------------

// Latents in compressed-row form: row b owns entries row_offsets[b] .. row_offsets[b+1]-1, entry p
// is latent cols[p] with activation values[p].
struct SAELAB_API SparseRows {
  torch::Tensor values;       // [nnz] float, differentiable
  torch::Tensor cols;         // [nnz] int64 in [0, d_sae)
  torch::Tensor row_offsets;  // [batch + 1] int64, non-decreasing, row_offsets[0] = 0
};

// Per-row top-k of a [batch, n] tensor (no autograd): indices [batch, k] of the k largest entries of
// every row, in no particular order. Ties are broken towards the lower index, so exactly k distinct
// indices come back per row. One read pass with a k-element heap per row.
SAELAB_API torch::Tensor topk_indices(const torch::Tensor& scores, std::int64_t k);

// Indices into scores.flatten() of its `count` largest entries across the whole tensor, sorted
// ascending (so grouped by row). Exact; ties broken arbitrarily. No autograd.
SAELAB_API torch::Tensor batch_topk_flat_indices(const torch::Tensor& scores, std::int64_t count);

// The encoder (x - b_dec) W_enc + b_enc -> [batch, d_sae] as one autograd node whose backward
// gets b_dec's gradient as -W_enc Σ_b grad (a GEMV) instead of a [batch, d_in] GEMM through x - b_dec.
SAELAB_API torch::Tensor encode_pre(const torch::Tensor& x, const torch::Tensor& W_enc,
                                    const torch::Tensor& b_enc, const torch::Tensor& b_dec,
                                    const PoolPtr& pool = {});

// Chooses the active latents from the pre-activations [batch, d_sae] (called without autograd):
// returns {cols, row_offsets} of a SparseRows (values are filled by sparse_encode).
using LatentSelector = std::function<SparseRows(const torch::Tensor& pre)>;

struct SAELAB_API SparseEncodeResult {
  SparseRows latents;             // values = ReLU(pre) at the selected entries, differentiable
  torch::Tensor pre_activations;  // [batch, d_sae], differentiable
};

// Encoder + selection as one autograd node. When only the selected values receive a gradient
// (no loss uses pre_activations), the backward is sparse too: dW_enc, db_enc and db_dec come from
// the nnz selected entries by a row scatter, with no [batch, d_sae] GEMM. A gradient of
// pre_activations (auxk) switches the backward to the dense GEMMs.
SAELAB_API SparseEncodeResult sparse_encode(const torch::Tensor& x, const torch::Tensor& W_enc,
                                            const torch::Tensor& b_enc, const torch::Tensor& b_dec,
                                            const LatentSelector& select, const PoolPtr& pool = {});

// Dense [batch, d_sae] latents holding the values of z (differentiable w.r.t. z.values).
SAELAB_API torch::Tensor densify(const SparseRows& z, std::int64_t d_sae, const PoolPtr& pool = {});

// Compressed rows for idx [batch, k] per-row indices (every row has k entries). values [batch, k]
// may be undefined (a selection, as a LatentSelector returns).
SAELAB_API SparseRows uniform_rows(const torch::Tensor& values, const torch::Tensor& idx);
// Compressed rows for ascending flat indices into a [batch, d_sae] tensor (values may be undefined).
SAELAB_API SparseRows rows_from_flat(const torch::Tensor& values, const torch::Tensor& flat_idx,
                                     std::int64_t batch, std::int64_t d_sae);

// Σ_p values[p] W_dec[cols[p]] for every row: [batch, d_in], no bias. Differentiable w.r.t.
// values and W_dec (gathered rows, no dense [batch, d_sae] GEMM in either direction).
SAELAB_API torch::Tensor sparse_decode(const SparseRows& z, const torch::Tensor& W_dec,
                                       const PoolPtr& pool = {});

// ---- JumpReLU (Rajamanoharan et al. 2024, "Jumping Ahead") -------------------------------------

// pre * H(pre - threshold). Gradient w.r.t. pre: H(pre - threshold) (exact away from the jump).
// Gradient w.r.t. threshold [d_sae]: the straight-through estimate
//   -(threshold / bandwidth) * K((pre - threshold) / bandwidth), K(u) = 1[|u| < 1/2],
// summed over the batch.
SAELAB_API torch::Tensor jumprelu(const torch::Tensor& pre, const torch::Tensor& threshold, double bandwidth);

// H(pre - threshold) as 0/1 in pre's dtype. No gradient w.r.t. pre; w.r.t. threshold:
//   -(1 / bandwidth) * K((pre - threshold) / bandwidth), summed over the batch,
// which is exactly the central difference of H with step bandwidth / 2.
SAELAB_API torch::Tensor heaviside_ste(const torch::Tensor& pre, const torch::Tensor& threshold,
                                       double bandwidth);

}  // namespace saelab::sae_math
