#include "model.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/models/rows.hpp"

namespace saelab::llama {
namespace {

using models::HookKind;
using models::rows;
using models::unflatten;

// A tensor of the file, dequantized, checked to have torch shape `shape`.
torch::Tensor load(const gguf::File& f, const std::string& name, std::vector<std::int64_t> shape) {
  auto t = gguf::load_f32(f, name);
  SAELAB_CHECK(t.sizes() == at::IntArrayRef(shape), FormatError, "llama: '", f.path().string(), "': tensor '",
               name, "' has torch shape ", t.sizes(), ", expected ", at::IntArrayRef(shape));
  return t;
}

BlockWeights load_block(const gguf::File& f, const Config& c, std::int64_t l) {
  const std::string p = cat("blk.", l, ".");
  const auto d = c.d_model;
  BlockWeights w;
  w.attn_norm = load(f, p + "attn_norm.weight", {d});
  // [out, in] as stored (torch order) -> one [in, q + 2 kv] matrix, so the forward is x @ W.
  w.w_qkv = at::cat({load(f, p + "attn_q.weight", {c.q_width(), d}),
                     load(f, p + "attn_k.weight", {c.kv_width(), d}),
                     load(f, p + "attn_v.weight", {c.kv_width(), d})},
                    0)
                .t()
                .contiguous();
  w.w_o = load(f, p + "attn_output.weight", {d, c.q_width()}).t().contiguous();
  w.ffn_norm = load(f, p + "ffn_norm.weight", {d});
  w.w_gate_up =
      at::cat({load(f, p + "ffn_gate.weight", {c.d_mlp, d}), load(f, p + "ffn_up.weight", {c.d_mlp, d})}, 0)
          .t()
          .contiguous();
  w.w_down = load(f, p + "ffn_down.weight", {d, c.d_mlp}).t().contiguous();
  return w;
}

BlockWeights to(const BlockWeights& w, torch::Dtype dtype, torch::Device device) {
  auto cv = [&](const torch::Tensor& t) { return t.to(device, dtype); };
  return {cv(w.attn_norm), cv(w.w_qkv), cv(w.w_o), cv(w.ffn_norm), cv(w.w_gate_up), cv(w.w_down)};
}

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto xf = x.to(torch::kFloat32);
  const auto inv = at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * (xf * inv).to(x.scalar_type());
}

Rotary rotary_tables(std::int64_t seq, std::int64_t rope_dim, double base, torch::Device device) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  // transformers: inv_freq = 1 / base^(arange(0, dim, 2) / dim), freqs = position * inv_freq.
  const auto exponent = at::arange(0, rope_dim, 2, f32) / static_cast<double>(rope_dim);
  const auto inv_freq = at::pow(base, exponent).reciprocal();    // [rope_dim / 2]
  const auto freqs = at::outer(at::arange(seq, f32), inv_freq);  // [seq, rope_dim / 2]
  return {freqs.cos(), freqs.sin()};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto B = x.size(0), T = x.size(1), H = x.size(2), Dh = x.size(3);
  const auto R = cos.size(1) * 2;  // rotated dims
  auto rot = x.narrow(3, 0, R).reshape({B, T, H, R / 2, 2});
  const auto x0 = rot.select(4, 0), x1 = rot.select(4, 1);  // [B, T, H, R/2]
  const auto c = cos.view({1, T, 1, R / 2}).to(x.scalar_type());
  const auto s = sin.view({1, T, 1, R / 2}).to(x.scalar_type());
  auto out = at::stack({x0 * c - x1 * s, x0 * s + x1 * c}, -1).view({B, T, H, R});
  if (R == Dh) return out;
  return at::cat({out, x.narrow(3, R, Dh - R)}, 3);
}

Model::Model(const gguf::File& file, const Config& config, torch::Dtype dtype, torch::Device device)
    : cfg_(config) {
  const auto d = cfg_.d_model;
  embed_ = load(file, "token_embd.weight", {cfg_.vocab_size, d}).to(device, dtype);
  final_norm_ = load(file, "output_norm.weight", {d}).to(device, dtype);
  head_ = cfg_.tied_head ? embed_ : load(file, "output.weight", {cfg_.vocab_size, d}).to(device, dtype);
  blocks_.reserve(static_cast<std::size_t>(cfg_.n_layer));
  for (std::int64_t l = 0; l < cfg_.n_layer; ++l)
    blocks_.push_back(to(load_block(file, cfg_, l), dtype, device));
}

torch::Tensor Model::attention(const torch::Tensor& x, const BlockWeights& w, const torch::Tensor& mask,
                               const torch::Tensor& cos, const torch::Tensor& sin, KvCache* cache,
                               std::int64_t layer) const {
  const auto B = x.size(0), T = x.size(1), H = cfg_.n_head, Hkv = cfg_.n_head_kv, Dh = cfg_.head_dim;
  const auto G = cfg_.group();
  const auto qkv = unflatten(at::mm(rows(x), w.w_qkv), x);  // [B, T, (H + 2 Hkv) Dh]
  auto q = apply_rotary(qkv.narrow(2, 0, H * Dh).view({B, T, H, Dh}), cos, sin);
  auto k = apply_rotary(qkv.narrow(2, H * Dh, Hkv * Dh).view({B, T, Hkv, Dh}), cos, sin);
  auto v = qkv.narrow(2, (H + Hkv) * Dh, Hkv * Dh).view({B, T, Hkv, Dh});
  // Query head h reads KV head h / G. Grouping the G query heads of one KV head as G * T rows of
  // one matrix makes K and V shared operands of a bigger GEMM instead of G copies.
  q = q.view({B, T, Hkv, G, Dh}).permute({0, 2, 3, 1, 4}).reshape({B * Hkv, G * T, Dh});
  k = k.permute({0, 2, 1, 3}).reshape({B * Hkv, T, Dh});
  v = v.permute({0, 2, 1, 3}).reshape({B * Hkv, T, Dh});
  if (cache) {  // [B Hkv, past + T, Dh]
    auto& ck = cache->k[static_cast<std::size_t>(layer)];
    auto& cv = cache->v[static_cast<std::size_t>(layer)];
    ck = ck.defined() ? at::cat({ck, k}, 1) : k.contiguous();
    cv = cv.defined() ? at::cat({cv, v}, 1) : v.contiguous();
    k = ck;
    v = cv;
  }
  auto scores = at::baddbmm(mask, q, k.transpose(1, 2), /*beta=*/1.0,
                            /*alpha=*/1.0 / std::sqrt(static_cast<double>(Dh)));  // [B Hkv, G T, past + T]
  at::_softmax_out(scores, scores, -1, /*half_to_float=*/false);
  auto ctx = at::bmm(scores, v);  // [B Hkv, G T, Dh]
  auto merged = ctx.view({B, Hkv, G, T, Dh}).permute({0, 3, 1, 2, 4}).reshape({B, T, H * Dh});
  return unflatten(at::mm(rows(merged), w.w_o), merged);
}

torch::Tensor Model::block_forward(torch::Tensor x, std::int64_t layer, const torch::Tensor& mask,
                                   const torch::Tensor& cos, const torch::Tensor& sin,
                                   const models::RunPlan& plan, KvCache* cache) const {
  const BlockWeights& w = blocks_[static_cast<std::size_t>(layer)];
  auto hook = [&](HookKind kind, torch::Tensor& t) { plan.at({kind, layer}, t); };
  auto a = attention(rms_norm(x, w.attn_norm, cfg_.rms_eps), w, mask, cos, sin, cache, layer);
  hook(HookKind::AttnOut, a);
  x = x + a;  // out of place: a captured resid_pre keeps its value
  hook(HookKind::ResidMid, x);
  auto n = rms_norm(x, w.ffn_norm, cfg_.rms_eps);
  hook(HookKind::MlpIn, n);
  const auto gu = at::mm(rows(n), w.w_gate_up);  // [rows, 2 d_mlp]
  auto h = at::silu(gu.narrow(1, 0, cfg_.d_mlp)) * gu.narrow(1, cfg_.d_mlp, cfg_.d_mlp);
  h = unflatten(h, x);
  hook(HookKind::MlpPost, h);
  auto m = unflatten(at::mm(rows(h), w.w_down), x);
  hook(HookKind::MlpOut, m);
  x = x + m;
  hook(HookKind::ResidPost, x);
  return x;
}

torch::Tensor Model::run(const torch::Tensor& tokens, const models::RunPlan& plan) const {
  SAELAB_CHECK(plan.n_blocks >= 0 && plan.n_blocks <= cfg_.n_layer, Error, "llama: plan runs ", plan.n_blocks,
               " blocks of ", cfg_.n_layer);
  const auto T = tokens.size(1);
  auto x = at::embedding(embed_, tokens);  // [B, T, d]
  const auto rot = rotary_tables(T, cfg_.rope_dim, cfg_.rope_base, x.device());
  // Additive causal mask, repeated for the G query heads that share a KV head: [G T, T].
  auto mask = at::full({T, T}, -std::numeric_limits<float>::infinity(), x.options())
                  .triu_(1)
                  .repeat({cfg_.group(), 1});
  return run_blocks(x, mask, rot.cos, rot.sin, plan, nullptr);
}

torch::Tensor Model::run_blocks(torch::Tensor x, const torch::Tensor& mask, const torch::Tensor& cos,
                                const torch::Tensor& sin, const models::RunPlan& plan, KvCache* cache) const {
  for (std::int64_t l = 0; l < plan.n_blocks; ++l) {
    plan.at({HookKind::ResidPre, l}, x);
    x = block_forward(x, l, mask, cos, sin, plan, cache);
  }
  if (plan.n_blocks < cfg_.n_layer) plan.at({HookKind::ResidPre, plan.n_blocks}, x);
  if (!plan.final_ln) return x;
  x = rms_norm(x, final_norm_, cfg_.rms_eps);
  plan.at({HookKind::LnFinal, cfg_.n_layer}, x);
  if (!plan.unembed) return x;
  return unflatten(at::mm(rows(x), head_.t()), x);  // [B, T, vocab]
}

torch::Tensor Model::run_cached(const torch::Tensor& tokens, KvCache& cache,
                                const models::RunPlan& plan) const {
  SAELAB_CHECK(tokens.dim() == 2 && tokens.size(0) == 1, Error, "llama: run_cached takes tokens [1, T], got ",
               tokens.sizes());
  SAELAB_CHECK(plan.n_blocks == cfg_.n_layer && plan.final_ln && plan.unembed, Error,
               "llama: run_cached runs the whole model; its plan must reach the logits");
  if (cache.k.empty()) {
    cache.k.resize(static_cast<std::size_t>(cfg_.n_layer));
    cache.v.resize(static_cast<std::size_t>(cfg_.n_layer));
  }
  const std::int64_t P = cache.length, T = tokens.size(1);
  auto x = at::embedding(embed_, tokens);  // [1, T, d]
  const auto rot = rotary_tables(P + T, cfg_.rope_dim, cfg_.rope_base, x.device());
  const auto cos = rot.cos.narrow(0, P, T), sin = rot.sin.narrow(0, P, T);
  // New position P + i sees keys 0 .. P + i: [G T, P + T].
  auto mask = at::full({T, P + T}, -std::numeric_limits<float>::infinity(), x.options())
                  .triu_(P + 1)
                  .repeat({cfg_.group(), 1});
  auto logits = run_blocks(x, mask, cos, sin, plan, &cache);  // [1, T, vocab]
  cache.length = P + T;
  return logits;
}

}  // namespace saelab::llama
