#include "model.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/models/rows.hpp"

namespace saelab::gpt2 {

using models::rows;
using models::unflatten;

Conv1DImpl::Conv1DImpl(std::int64_t in, std::int64_t out) {
  weight = register_parameter("weight", torch::empty({in, out}), /*requires_grad=*/false);
  bias = register_parameter("bias", torch::empty({out}), /*requires_grad=*/false);
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x) {
  // addmm fuses the bias into the GEMM's output initialisation: no separate pass over [rows, out].
  return unflatten(at::addmm(bias, rows(x), weight), x);
}

LayerNormImpl::LayerNormImpl(std::int64_t d, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({d}), false);
  bias = register_parameter("bias", torch::empty({d}), false);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, eps, /*cudnn_enable=*/true);
}

TableImpl::TableImpl(std::int64_t n, std::int64_t d) {
  weight = register_parameter("weight", torch::empty({n, d}), false);
}

AttentionImpl::AttentionImpl(const Config& cfg, std::int64_t layer) : n_head(cfg.n_head) {
  c_attn = register_module("c_attn", Conv1D(cfg.n_embd, 3 * cfg.n_embd));
  c_proj = register_module("c_proj", Conv1D(cfg.n_embd, cfg.n_embd));
  // transformers divides the scores by sqrt(d_head) (and by layer + 1 when asked); folding the
  // factor into the GEMM's alpha saves a pass over [batch * heads, seq, seq].
  scale = cfg.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(cfg.d_head())) : 1.0;
  if (cfg.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(layer + 1);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2), H = n_head, Dh = D / H;
  // [B, T, 3D] -> [3, B, H, T, Dh]: one copy puts q, k and v each contiguous per head.
  auto qkv = c_attn(x).view({B, T, 3, H, Dh}).permute({2, 0, 3, 1, 4}).contiguous();
  auto q = qkv[0].view({B * H, T, Dh});
  auto k = qkv[1].view({B * H, T, Dh});
  auto v = qkv[2].view({B * H, T, Dh});
  // scores = mask + scale * q k^T   [B*H, T, T]; the mask broadcasts over the batch.
  auto scores = at::baddbmm(mask, q, k.transpose(1, 2), /*beta=*/1.0, /*alpha=*/scale);
  at::_softmax_out(scores, scores, -1, /*half_to_float=*/false);  // in place: no second buffer
  auto ctx = at::bmm(scores, v);                                  // [B*H, T, Dh]
  auto merged = ctx.view({B, H, T, Dh}).permute({0, 2, 1, 3}).reshape({B, T, D});
  return c_proj(merged);
}

MlpImpl::MlpImpl(const Config& cfg) : activation(cfg.activation) {
  c_fc = register_module("c_fc", Conv1D(cfg.n_embd, cfg.d_mlp()));
  c_proj = register_module("c_proj", Conv1D(cfg.d_mlp(), cfg.n_embd));
}

torch::Tensor MlpImpl::hidden(const torch::Tensor& x) {
  auto h = c_fc(x);
  // In place on the fresh GEMM output. ATen's tanh-approximate GELU is gelu_new's formula
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in one vectorised pass.
  switch (activation) {
    case Activation::GeluTanh:
      return at::gelu_(h, "tanh");
    case Activation::GeluErf:
      return at::gelu_(h, "none");
    case Activation::Relu:
      return at::relu_(h);
  }
  return h;
}

torch::Tensor MlpImpl::out(const torch::Tensor& h) {
  return c_proj(h);
}

BlockImpl::BlockImpl(const Config& cfg, std::int64_t layer_) : layer(layer_) {
  ln_1 = register_module("ln_1", LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  attn = register_module("attn", Attention(cfg, layer_));
  ln_2 = register_module("ln_2", LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  mlp = register_module("mlp", Mlp(cfg));
}

torch::Tensor BlockImpl::forward(torch::Tensor x, const torch::Tensor& mask, const RunPlan& plan) {
  auto hook = [&](HookKind kind, torch::Tensor& t) { plan.at({kind, layer}, t); };
  // resid_pre is visited by Gpt2Impl::run, which may stop right there.
  auto a = attn(ln_1(x), mask);
  hook(HookKind::AttnOut, a);
  // Out of place: a captured resid_pre must keep its value.
  x = x + a;
  hook(HookKind::ResidMid, x);
  auto n = ln_2(x);
  hook(HookKind::MlpIn, n);
  auto h = mlp->hidden(n);
  hook(HookKind::MlpPost, h);
  auto m = mlp->out(h);
  hook(HookKind::MlpOut, m);
  x = x + m;
  hook(HookKind::ResidPost, x);
  return x;
}

Gpt2Impl::Gpt2Impl(const Config& cfg, bool untied_head) : cfg_(cfg) {
  wte = register_module("wte", Table(cfg.vocab_size, cfg.n_embd));
  wpe = register_module("wpe", Table(cfg.n_positions, cfg.n_embd));
  h = register_module("h", torch::nn::ModuleList());
  for (std::int64_t l = 0; l < cfg.n_layer; ++l) h->push_back(Block(cfg, l));
  ln_f = register_module("ln_f", LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  if (untied_head) lm_head = register_module("lm_head", Table(cfg.vocab_size, cfg.n_embd));
}

const torch::Tensor& Gpt2Impl::unembedding() const {
  return lm_head ? lm_head->weight : wte->weight;
}

torch::Tensor Gpt2Impl::run(const torch::Tensor& tokens, const RunPlan& plan) {
  SAELAB_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kInt64, Error,
               "gpt2: tokens must be [batch, seq] int64, got ", tokens.sizes(), " ", tokens.scalar_type());
  SAELAB_CHECK(plan.n_blocks >= 0 && plan.n_blocks <= cfg_.n_layer, Error, "gpt2: plan runs ", plan.n_blocks,
               " blocks of ", cfg_.n_layer);
  const auto T = tokens.size(1);
  const auto opts = wte->weight.options();
  auto x = at::embedding(wte->weight, tokens) + wpe->weight.slice(0, 0, T);  // [B, T, d]
  // Additive causal mask [T, T]: 0 on and below the diagonal, -inf above.
  auto mask = at::full({T, T}, -std::numeric_limits<float>::infinity(), opts).triu_(1);
  for (std::int64_t l = 0; l < plan.n_blocks; ++l) {
    plan.at({HookKind::ResidPre, l}, x);
    x = h[l]->as<BlockImpl>()->forward(x, mask, plan);
  }
  if (plan.n_blocks < cfg_.n_layer) plan.at({HookKind::ResidPre, plan.n_blocks}, x);
  if (!plan.final_ln) return x;
  x = ln_f(x);
  plan.at({HookKind::LnFinal, cfg_.n_layer}, x);
  if (!plan.unembed) return x;
  return unflatten(at::mm(rows(x), unembedding().t()), x);  // [B, T, vocab]
}

}  // namespace saelab::gpt2
