// Encoder autograd nodes (sae_math::encode_pre, sparse_encode) and densify.
//
// Both compute pre = (x - b_dec) W_enc + b_enc. Plain autograd would get b_dec's gradient through
// x - b_dec, i.e. a [batch, d_sae] x [d_sae, d_in] GEMM; here it is db_dec = -W_enc Σ_b grad_pre.
#include <algorithm>

#include <ATen/ATen.h>
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

struct EncoderGrads {
  torch::Tensor x, W_enc, b_enc, b_dec;
};

// Gradients of the encoder's inputs from a dense grad_pre [batch, d_sae].
EncoderGrads dense_encoder_backward(AutogradContext* ctx, const torch::Tensor& grad_pre,
                                    const torch::Tensor& xc, const torch::Tensor& W_enc) {
  EncoderGrads g;
  if (ctx->needs_input_grad(0)) g.x = at::mm(grad_pre, W_enc.t());
  if (ctx->needs_input_grad(1)) {
    g.W_enc = take(pool_of(ctx), "enc.gW_enc", W_enc.sizes(), W_enc.options());
    at::mm_out(g.W_enc, xc.t(), grad_pre);
  }
  if (ctx->needs_input_grad(2) || ctx->needs_input_grad(3)) {
    auto s = grad_pre.sum(0);
    if (ctx->needs_input_grad(2)) g.b_enc = s;
    if (ctx->needs_input_grad(3)) g.b_dec = at::mv(W_enc, s).neg_();
  }
  return g;
}

struct EncodePreFn : public torch::autograd::Function<EncodePreFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& W_enc,
                               const torch::Tensor& b_enc, const torch::Tensor& b_dec, const PoolPtr& pool) {
    save_pool(ctx, pool);
    auto xc = x - b_dec;
    ctx->save_for_backward({xc, W_enc});
    auto pre = take(pool, "enc.pre", {x.size(0), W_enc.size(1)}, W_enc.options());
    return {at::addmm_out(pre, b_enc, xc, W_enc)};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto g = dense_encoder_backward(ctx, grads[0], saved[0], saved[1]);
    return {g.x, g.W_enc, g.b_enc, g.b_dec, torch::Tensor()};
  }
};

// Row index of every entry of compressed rows: [nnz].
torch::Tensor entry_rows(const torch::Tensor& offsets, std::int64_t nnz) {
  auto counts = offsets.slice(0, 1) - offsets.slice(0, 0, -1);
  (void)nnz;
  return at::repeat_interleave(counts);  // [nnz]: row b repeated counts[b] times
}

struct SparseEncodeFn : public torch::autograd::Function<SparseEncodeFn> {
  // Outputs: values [nnz], pre [batch, d_sae], cols [nnz], offsets [batch + 1] (last two integer).
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& W_enc,
                               const torch::Tensor& b_enc, const torch::Tensor& b_dec,
                               const LatentSelector& select, const PoolPtr& pool) {
    ctx->set_materialize_grads(false);
    save_pool(ctx, pool);
    auto xc = x - b_dec;
    auto pre = take(pool, "enc.pre", {x.size(0), W_enc.size(1)}, W_enc.options());
    at::addmm_out(pre, b_enc, xc, W_enc);
    SparseRows sel = select(pre);
    auto cols = sel.cols.contiguous();
    auto off = sel.row_offsets.contiguous();
    const std::int64_t d_sae = pre.size(1);
    auto flat = entry_rows(off, cols.numel()).mul_(d_sae).add_(cols);
    auto values = at::relu(pre.reshape({-1}).index_select(0, flat));
    ctx->save_for_backward({xc, W_enc, values, cols, off, flat});
    ctx->mark_non_differentiable({cols, off});
    return {values, pre, cols, off};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& xc = saved[0];
    const auto& W_enc = saved[1];
    const auto& values = saved[2];
    const auto& cols = saved[3];
    const auto& off = saved[4];
    const auto& flat = saved[5];
    const auto& g_values = grads[0];
    const auto& g_pre = grads[1];
    // The ReLU after selection passes gradient only where the value is positive.
    torch::Tensor gv;
    if (g_values.defined()) gv = g_values * (values > 0).to(g_values.scalar_type());
    const std::int64_t B = xc.size(0), d_in = xc.size(1), d_sae = W_enc.size(1);

    auto pool = pool_of(ctx);
    if (g_pre.defined() || ctx->needs_input_grad(0)) {
      auto grad_pre = take(pool, "enc.grad_pre", {B, d_sae}, xc.options());
      if (g_pre.defined()) {
        grad_pre.copy_(g_pre);
      } else {
        grad_pre.zero_();
      }
      if (gv.defined()) grad_pre.view({-1}).index_add_(0, flat, gv);
      auto g = dense_encoder_backward(ctx, grad_pre, xc, W_enc);
      return {g.x, g.W_enc, g.b_enc, g.b_dec, torch::Tensor(), torch::Tensor()};
    }
    if (!gv.defined())
      return {torch::Tensor(), torch::Tensor(), torch::Tensor(),
              torch::Tensor(), torch::Tensor(), torch::Tensor()};
    torch::Tensor gW_enc, gb_enc, gb_dec;
    if (ctx->needs_input_grad(1)) {
      // dW_enc[:, i] = Σ_{entries p of latent i} gv[p] xc[row(p)], built as rows of dW_encᵀ.
      auto gWt = take(pool, "enc.gW_enc_t", {d_sae, d_in}, xc.options()).zero_();  // [d_sae, d_in]
      auto xcc = xc.contiguous();
      AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "sparse_encode_backward", [&] {
        constexpr std::int64_t line = 64 / sizeof(scalar_t);
        const std::int64_t nslices = (d_in + line - 1) / line;
        const auto* vp = gv.data_ptr<scalar_t>();
        const auto* cp = cols.data_ptr<std::int64_t>();
        const auto* op = off.data_ptr<std::int64_t>();
        const auto* xp = xcc.data_ptr<scalar_t>();
        auto* out = gWt.data_ptr<scalar_t>();
        at::parallel_for(0, nslices, 1, [&](std::int64_t s0, std::int64_t s1) {
          kernels::scatter_rows_add(vp, cp, op, xp, B, d_in, out, s0 * line, std::min(d_in, s1 * line));
        });
      });
      gW_enc = take(pool, "enc.gW_enc", {d_in, d_sae}, xc.options()).copy_(gWt.t());
    }
    if (ctx->needs_input_grad(2) || ctx->needs_input_grad(3)) {
      auto s = at::zeros({d_sae}, xc.options()).index_add_(0, cols, gv);
      if (ctx->needs_input_grad(2)) gb_enc = s;
      if (ctx->needs_input_grad(3)) gb_dec = at::mv(W_enc, s).neg_();
    }
    return {torch::Tensor(), gW_enc, gb_enc, gb_dec, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor encode_pre(const torch::Tensor& x, const torch::Tensor& W_enc, const torch::Tensor& b_enc,
                         const torch::Tensor& b_dec, const PoolPtr& pool) {
  return EncodePreFn::apply(x, W_enc, b_enc, b_dec, pool)[0];
}

SparseEncodeResult sparse_encode(const torch::Tensor& x, const torch::Tensor& W_enc,
                                 const torch::Tensor& b_enc, const torch::Tensor& b_dec,
                                 const LatentSelector& select, const PoolPtr& pool) {
  auto out = SparseEncodeFn::apply(x, W_enc, b_enc, b_dec, select, pool);
  SparseEncodeResult r;
  r.latents = {out[0], out[2], out[3]};
  r.pre_activations = out[1];
  return r;
}

torch::Tensor densify(const SparseRows& z, std::int64_t d_sae, const PoolPtr& pool) {
  const std::int64_t B = z.row_offsets.numel() - 1;
  auto flat = entry_rows(z.row_offsets, z.cols.numel()).mul_(d_sae).add_(z.cols);
  return take(pool, "densify", {B * d_sae}, z.values.options())
      .zero_()
      .scatter_(0, flat, z.values)
      .view({B, d_sae});
}

}  // namespace saelab::sae_math
