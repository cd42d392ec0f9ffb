// Sparse latents: per-row and batch-wide top-k selection, compressed rows, and the sparse decode
// with its backward (sae_math.hpp).
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "saelab/core/error.hpp"
#include "saelab/sae/math.hpp"
#include "sae/pool_ctx.hpp"
#include "sae/sparse_kernels.hpp"

namespace saelab::sae_math {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---- per-row top-k ----------------------------------------------------------------------------

// Heap entry order: "a is worse than b". Lower value is worse; on equal values the higher index is
// worse, so ties resolve towards the lower index.
template <class T>
struct Worse {
  bool operator()(const std::pair<T, std::int64_t>& a, const std::pair<T, std::int64_t>& b) const {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  }
};

template <class T>
void topk_row(const T* row, std::int64_t n, std::int64_t k, std::int64_t* out,
              std::vector<std::pair<T, std::int64_t>>& heap) {
  // A min-heap under Worse<T>'s inverse keeps the worst kept entry at the front, so a candidate is
  // compared against one value: the common case (not in the top k) is a single branch.
  auto better_first = [](const std::pair<T, std::int64_t>& a, const std::pair<T, std::int64_t>& b) {
    return Worse<T>()(b, a);
  };
  heap.clear();
  for (std::int64_t j = 0; j < k; ++j) heap.emplace_back(row[j], j);
  std::make_heap(heap.begin(), heap.end(), better_first);
  T worst = heap.front().first;
  for (std::int64_t j = k; j < n; ++j) {
    // Equal values never displace: j is larger than every kept index.
    if (!(row[j] > worst)) continue;
    std::pop_heap(heap.begin(), heap.end(), better_first);
    heap.back() = {row[j], j};
    std::push_heap(heap.begin(), heap.end(), better_first);
    worst = heap.front().first;
  }
  for (std::int64_t j = 0; j < k; ++j) out[j] = heap[j].second;
}

}  // namespace

torch::Tensor topk_indices(const torch::Tensor& scores, std::int64_t k) {
  SAELAB_CHECK(scores.dim() == 2, Error, "topk_indices: expected [batch, n], got ", scores.sizes());
  const std::int64_t B = scores.size(0), n = scores.size(1);
  SAELAB_CHECK(k >= 1 && k <= n, Error, "topk_indices: k = ", k, " outside 1..", n);
  auto s = scores.detach().contiguous();
  auto idx = at::empty({B, k}, s.options().dtype(at::kLong));
  auto* out = idx.data_ptr<std::int64_t>();
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "topk_indices", [&] {
    const auto* data = s.data_ptr<scalar_t>();
    at::parallel_for(0, B, 16, [&](std::int64_t b0, std::int64_t b1) {
      std::vector<std::pair<scalar_t, std::int64_t>> heap;
      heap.reserve(k);
      for (std::int64_t b = b0; b < b1; ++b) topk_row(data + b * n, n, k, out + b * k, heap);
    });
  });
  return idx;
}

torch::Tensor batch_topk_flat_indices(const torch::Tensor& scores, std::int64_t count) {
  at::NoGradGuard no_grad;
  auto flat = scores.detach().reshape({-1}).contiguous();
  const std::int64_t N = flat.numel();
  SAELAB_CHECK(count >= 1, Error, "batch_topk_flat_indices: count = ", count, " must be ≥ 1");
  if (count >= N) return at::arange(N, flat.options().dtype(at::kLong));
  // Exact selection without sorting N values: a sample gives a threshold t with (very likely) more
  // than `count` entries above it; the top `count` are then all among the entries > t. When the
  // guess leaves too few, the margin grows until t = -inf (every entry a candidate).
  const std::int64_t S = std::min<std::int64_t>(N, 1 << 16);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0x5ae1ab);
  auto sample = flat.index_select(0, at::randint(N, {S}, gen, flat.options().dtype(at::kLong)));
  auto sorted_sample = std::get<0>(sample.sort(/*dim=*/0, /*descending=*/true));
  double margin = 1.5;
  torch::Tensor cand;
  for (;;) {
    std::int64_t m =
        static_cast<std::int64_t>(std::ceil(double(S) * double(count) / double(N) * margin)) + 32;
    if (m >= S) {
      cand = at::arange(N, flat.options().dtype(at::kLong));
      break;
    }
    auto t = sorted_sample[m];
    cand = at::nonzero(flat > t).squeeze(1);
    if (cand.numel() >= count) break;
    margin *= 4;
  }
  auto top = at::topk(flat.index_select(0, cand), count, 0, true, /*sorted=*/false);
  return std::get<0>(cand.index_select(0, std::get<1>(top)).sort());
}

SparseRows uniform_rows(const torch::Tensor& values, const torch::Tensor& idx) {
  SAELAB_CHECK(idx.dim() == 2 && (!values.defined() || values.sizes() == idx.sizes()), Error,
               "uniform_rows: values ", values.defined() ? values.sizes() : at::IntArrayRef{},
               " and indices ", idx.sizes(), " must both be [batch, k]");
  const std::int64_t B = idx.size(0), k = idx.size(1);
  return {values.defined() ? values.reshape({-1}) : values, idx.reshape({-1}).contiguous(),
          at::arange(0, (B + 1) * k, k, idx.options().dtype(at::kLong))};
}

SparseRows rows_from_flat(const torch::Tensor& values, const torch::Tensor& flat_idx, std::int64_t batch,
                          std::int64_t d_sae) {
  SAELAB_CHECK(flat_idx.dim() == 1 && (!values.defined() || values.sizes() == flat_idx.sizes()), Error,
               "rows_from_flat: values ", values.defined() ? values.sizes() : at::IntArrayRef{},
               " and indices ", flat_idx.sizes(), " must both be [nnz]");
  auto rows = flat_idx.div(d_sae, "floor");
  auto cols = flat_idx - rows * d_sae;
  auto counts = at::bincount(rows, {}, batch);
  auto offsets = at::cat({at::zeros({1}, counts.options()), counts.cumsum(0)});
  return {values, cols.contiguous(), offsets.to(at::kLong)};
}

// ---- sparse decode ----------------------------------------------------------------------------

namespace {

struct SparseDecodeFn : public torch::autograd::Function<SparseDecodeFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& values, const torch::Tensor& W_dec,
                               const torch::Tensor& cols, const torch::Tensor& offsets, const PoolPtr& pool) {
    save_pool(ctx, pool);
    const std::int64_t B = offsets.numel() - 1, d = W_dec.size(1);
    auto v = values.contiguous();
    auto W = W_dec.contiguous();
    auto out = at::empty({B, d}, W.options());
    AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "sparse_decode", [&] {
      const auto* vp = v.data_ptr<scalar_t>();
      const auto* cp = cols.data_ptr<std::int64_t>();
      const auto* op = offsets.data_ptr<std::int64_t>();
      const auto* wp = W.data_ptr<scalar_t>();
      auto* outp = out.data_ptr<scalar_t>();
      at::parallel_for(0, B, 8, [&](std::int64_t b0, std::int64_t b1) {
        kernels::decode_rows(vp, cp, op, wp, d, outp, b0, b1);
      });
    });
    ctx->save_for_backward({v, W, cols, offsets});
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& v = saved[0];
    const auto& W = saved[1];
    const auto& cols = saved[2];
    const auto& off = saved[3];
    auto g = grads[0].contiguous();
    const std::int64_t B = off.numel() - 1, d = W.size(1);
    torch::Tensor gv, gW;
    if (ctx->needs_input_grad(0)) gv = at::empty_like(v);
    if (ctx->needs_input_grad(1)) gW = take(pool_of(ctx), "dec.gW", W.sizes(), W.options()).zero_();
    AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "sparse_decode_backward", [&] {
      const auto* vp = v.data_ptr<scalar_t>();
      const auto* cp = cols.data_ptr<std::int64_t>();
      const auto* op = off.data_ptr<std::int64_t>();
      const auto* wp = W.data_ptr<scalar_t>();
      const auto* gp = g.data_ptr<scalar_t>();
      if (gv.defined()) {
        auto* gvp = gv.data_ptr<scalar_t>();
        at::parallel_for(0, B, 8, [&](std::int64_t b0, std::int64_t b1) {
          kernels::dot_rows(gp, cp, op, wp, d, gvp, b0, b1);
        });
      }
      if (gW.defined()) {
        auto* gWp = gW.data_ptr<scalar_t>();
        // Slices of whole 64-byte lines so that threads never write the same cache line.
        constexpr std::int64_t line = 64 / sizeof(scalar_t);
        const std::int64_t nslices = (d + line - 1) / line;
        at::parallel_for(0, nslices, 1, [&](std::int64_t s0, std::int64_t s1) {
          kernels::scatter_rows_add(vp, cp, op, gp, B, d, gWp, s0 * line, std::min(d, s1 * line));
        });
      }
    });
    return {gv, gW, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sparse_decode(const SparseRows& z, const torch::Tensor& W_dec, const PoolPtr& pool) {
  SAELAB_CHECK(W_dec.dim() == 2, Error, "sparse_decode: W_dec must be [d_sae, d_in], got ", W_dec.sizes());
  SAELAB_CHECK(z.values.dim() == 1 && z.cols.sizes() == z.values.sizes(), Error, "sparse_decode: values ",
               z.values.sizes(), " and cols ", z.cols.sizes(), " must both be [nnz]");
  SAELAB_CHECK(z.cols.scalar_type() == at::kLong && z.row_offsets.scalar_type() == at::kLong, Error,
               "sparse_decode: cols and row_offsets must be int64");
  SAELAB_CHECK(z.values.scalar_type() == W_dec.scalar_type(), Error, "sparse_decode: values are ",
               z.values.scalar_type(), " but W_dec is ", W_dec.scalar_type());
  SAELAB_CHECK(z.row_offsets.dim() == 1 && z.row_offsets.numel() >= 1, Error,
               "sparse_decode: row_offsets must be [batch + 1]");
  auto cols = z.cols.contiguous();
  auto off = z.row_offsets.contiguous();
  const std::int64_t nnz = cols.numel(), d_sae = W_dec.size(0);
  SAELAB_CHECK(off[0].item<std::int64_t>() == 0 && off[-1].item<std::int64_t>() == nnz, Error,
               "sparse_decode: row_offsets must run from 0 to nnz = ", nnz);
  SAELAB_CHECK(off.numel() < 2 || (off.slice(0, 1) >= off.slice(0, 0, -1)).all().item<bool>(), Error,
               "sparse_decode: row_offsets must be non-decreasing");
  if (nnz > 0) {
    auto mm = at::aminmax(cols);
    std::int64_t lo = std::get<0>(mm).item<std::int64_t>(), hi = std::get<1>(mm).item<std::int64_t>();
    SAELAB_CHECK(lo >= 0 && hi < d_sae, Error, "sparse_decode: latent index range [", lo, ", ", hi,
                 "] outside [0, ", d_sae, ")");
  }
  return SparseDecodeFn::apply(z.values, W_dec, cols, off, pool)[0];
}

}  // namespace saelab::sae_math
