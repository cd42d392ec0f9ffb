#pragma once
// A Llama-architecture decoder (RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP,
// tied or separate output head) in LibTorch, inference only, loaded from a GGUF file.
//
// Weights are dequantized once at load into the compute dtype and laid out for the forward pass:
//   per block  attn_norm [d]; w_qkv [d, (H + 2 Hkv) Dh] (Q, K, V side by side: one GEMM);
//              w_o [H Dh, d]; ffn_norm [d]; w_gate_up [d, 2 d_mlp] (gate, up: one GEMM);
//              w_down [d_mlp, d]
//   embed [vocab, d]; final_norm [d]; head [vocab, d] (= embed when the file has no output.weight)
// GGUF stores Q and K rows permuted by llama.cpp's converter so that each rotary pair is two
// ADJACENT dimensions (2i, 2i + 1) of a head; the rotation here pairs them that way, with
// frequency base^(-2i / rope_dim). (Hugging Face's half-split rotation on un-permuted weights is
// the same function; mixing the two conventions runs without error and gives wrong attention.)
// Numerics follow transformers' LlamaModel: RMSNorm as weight * (x * rsqrt(mean(x^2) + eps)),
// scores scaled by 1/sqrt(Dh), softmax in the compute dtype.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "config.hpp"
#include "saelab/formats/gguf.hpp"
#include "saelab/models/generate.hpp"
#include "saelab/models/hooks.hpp"

namespace saelab::llama {

struct BlockWeights {
  torch::Tensor attn_norm, w_qkv, w_o, ffn_norm, w_gate_up, w_down;
};

// Keys and values of every block for one sequence: [Hkv, positions, Dh] each (batch 1).
struct KvCache : models::KvCache {
  std::vector<torch::Tensor> k, v;
};

class Model {
 public:
  // Dequantizes every tensor and checks its shape against the config (FormatError naming the
  // file and the tensor).
  Model(const gguf::File& file, const Config& config, torch::Dtype dtype, torch::Device device);

  // tokens [batch, seq] int64 -> logits [batch, seq, vocab] when plan.unembed, else the residual
  // stream [batch, seq, d] where the plan stopped (after the final norm when plan.final_ln).
  torch::Tensor run(const torch::Tensor& tokens, const models::RunPlan& plan) const;

  // tokens [1, T] at positions cache.length.. -> logits [1, T, vocab]; appends their keys and
  // values to `cache`. The same numbers as run() over the whole sequence, up to float rounding.
  // `plan` must reach the logits; its visitor sees only these T positions.
  torch::Tensor run_cached(const torch::Tensor& tokens, KvCache& cache, const models::RunPlan& plan) const;

  const Config& config() const { return cfg_; }
  const torch::Tensor& head() const { return head_; }              // W_U^T: [vocab, d]
  const torch::Tensor& final_norm() const { return final_norm_; }  // [d]
  const BlockWeights& block(std::int64_t l) const { return blocks_.at(static_cast<std::size_t>(l)); }

 private:
  // With `cache`, the block's keys and values of earlier positions are prepended to this call's
  // (and this call's appended to them); mask is then [G T, past + T].
  torch::Tensor block_forward(torch::Tensor x, std::int64_t layer, const torch::Tensor& mask,
                              const torch::Tensor& cos, const torch::Tensor& sin, const models::RunPlan& plan,
                              KvCache* cache) const;
  // Blocks [0, plan.n_blocks), then the final norm and unembedding as the plan asks.
  torch::Tensor run_blocks(torch::Tensor x, const torch::Tensor& mask, const torch::Tensor& cos,
                           const torch::Tensor& sin, const models::RunPlan& plan, KvCache* cache) const;
  torch::Tensor attention(const torch::Tensor& x, const BlockWeights& w, const torch::Tensor& mask,
                          const torch::Tensor& cos, const torch::Tensor& sin, KvCache* cache,
                          std::int64_t layer) const;

  Config cfg_;
  torch::Tensor embed_, final_norm_, head_;
  std::vector<BlockWeights> blocks_;
};

// RMSNorm over the last dimension: weight * (x * rsqrt(mean(x^2) + eps)), computed in float32.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// cos and sin [seq, rope_dim / 2] of positions 0..seq-1, float32 as transformers computes them.
struct Rotary {
  torch::Tensor cos, sin;
};
Rotary rotary_tables(std::int64_t seq, std::int64_t rope_dim, double base, torch::Device device);
// Rotates adjacent pairs of the first rope_dim dims of each head: x [batch, seq, heads, Dh].
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace saelab::llama
