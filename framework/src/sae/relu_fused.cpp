// The standard SAE's forward and hand-written backward as one autograd node (sae_math::relu_sae).
//
// Why not plain autograd: it materialises the L1 gradient sign(z)·c, a [batch, d_sae] copy of it in
// the GEMM bias, a separate ReLU-mask tensor and a gradient for b_dec through x - b_dec of size
// [batch, d_in]. Here the backward is
//   grad_pre = mask ⊙ (gz + G W_decᵀ) (+ gp)      one GEMM into a fresh buffer, mask in place
//   dW_dec   = zᵀ G,  dW_enc = (x - b_dec)ᵀ grad_pre,  db_enc = Σ_b grad_pre,
//   db_dec   = Σ_b G - W_enc db_enc
// where G = ∂L/∂x̂ [batch, d_in], gz = ∂L/∂z, gp = ∂L/∂pre (both [batch, d_sae], often absent).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "sae/fused_kernels.hpp"
#include "saelab/sae/math.hpp"
#include "sae/pool_ctx.hpp"

namespace saelab::sae_math {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct ReluSaeFn : public torch::autograd::Function<ReluSaeFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& W_enc,
                               const torch::Tensor& b_enc, const torch::Tensor& W_dec,
                               const torch::Tensor& b_dec, const PoolPtr& pool) {
    ctx->set_materialize_grads(false);
    save_pool(ctx, pool);
    const std::int64_t B = x.size(0), d_sae = W_enc.size(1);
    auto xc = x - b_dec;                                             // [batch, d_in]
    auto pre = take(pool, "relu.pre", {B, d_sae}, W_enc.options());  // [batch, d_sae]
    auto z = take(pool, "relu.z", {B, d_sae}, W_enc.options());      // [batch, d_sae]
    if (fused::fusable({&pre, &z, &b_enc})) {
      // A GEMM without the bias reads no C; the bias and the ReLU then take one pass.
      at::mm_out(pre, xc, W_enc);
      fused::add_bias_relu(pre, b_enc, z);
    } else {
      at::addmm_out(pre, b_enc, xc, W_enc);
      at::clamp_min_out(z, pre, 0);
    }
    auto xhat = at::addmm(b_dec, z, W_dec);  // [batch, d_in]
    ctx->save_for_backward({xc, W_enc, W_dec, z});
    return {z, xhat, pre};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& xc = saved[0];
    const auto& W_enc = saved[1];
    const auto& W_dec = saved[2];
    const auto& z = saved[3];
    const auto& gz = grads[0];
    const auto& G = grads[1];
    const auto& gp = grads[2];

    auto pool = pool_of(ctx);
    const std::int64_t B = z.size(0), d_sae = z.size(1), d_in = W_dec.size(1);
    const bool need_x = ctx->needs_input_grad(0), need_W_enc = ctx->needs_input_grad(1),
               need_b_enc = ctx->needs_input_grad(2), need_W_dec = ctx->needs_input_grad(3),
               need_b_dec = ctx->needs_input_grad(4);
    const bool need_pre_sum = need_b_enc || need_b_dec;
    torch::Tensor grad_pre;  // [batch, d_sae]
    torch::Tensor pre_sum;   // [d_sae]
    if (G.defined() || gz.defined()) grad_pre = take(pool, "relu.grad_pre", {B, d_sae}, z.options());
    // The common case: gz is the L1 gradient, the same row for every input (one value for Σ|z|, the
    // decoder norms for Σ|z|·‖W_dec‖). It is added in the pass that applies the ReLU mask and sums
    // the columns, instead of being copied into the GEMM output.
    const torch::Tensor gz_row = gz.defined() ? fused::repeated_row(gz) : at::zeros({d_sae}, z.options());
    if (G.defined() && gz_row.defined() && fused::fusable({&grad_pre, &z})) {
      at::mm_out(grad_pre, G, W_dec.t());
      pre_sum = fused::relu_backward_add(grad_pre, z, gz_row, need_pre_sum && !gp.defined());
    } else if (grad_pre.defined()) {
      if (G.defined() && gz.defined()) {
        at::addmm_out(grad_pre, gz, G, W_dec.t());
      } else if (G.defined()) {
        at::mm_out(grad_pre, G, W_dec.t());
      } else {
        grad_pre.copy_(gz);
      }
      at::threshold_backward_out(grad_pre, grad_pre, z, 0);
    }
    if (gp.defined()) grad_pre = grad_pre.defined() ? grad_pre.add_(gp) : gp;
    if (grad_pre.defined() && need_pre_sum && !pre_sum.defined()) pre_sum = grad_pre.sum(0);

    torch::Tensor gx, gW_enc, gb_enc, gW_dec, gb_dec;
    if (grad_pre.defined() && need_x) gx = at::mm(grad_pre, W_enc.t());
    if (grad_pre.defined() && need_W_enc) {
      gW_enc = take(pool, "relu.gW_enc", {d_in, d_sae}, z.options());
      at::mm_out(gW_enc, xc.t(), grad_pre);
    }
    if (need_b_enc) gb_enc = pre_sum;
    if (G.defined() && need_W_dec) {
      gW_dec = take(pool, "relu.gW_dec", {d_sae, d_in}, z.options());
      at::mm_out(gW_dec, z.t(), G);
    }
    if (need_b_dec) {
      if (G.defined()) gb_dec = G.sum(0);
      if (pre_sum.defined()) {
        auto through_enc = at::mv(W_enc, pre_sum);  // [d_in]
        gb_dec = gb_dec.defined() ? gb_dec.sub_(through_enc) : through_enc.neg_();
      }
    }
    return {gx, gW_enc, gb_enc, gW_dec, gb_dec, torch::Tensor()};
  }
};

}  // namespace

ReluSaeResult relu_sae(const torch::Tensor& x, const torch::Tensor& W_enc, const torch::Tensor& b_enc,
                       const torch::Tensor& W_dec, const torch::Tensor& b_dec, const PoolPtr& pool) {
  auto out = ReluSaeFn::apply(x, W_enc, b_enc, W_dec, b_dec, pool);
  return {out[0], out[1], out[2]};
}

}  // namespace saelab::sae_math
