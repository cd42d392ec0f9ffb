#pragma once
// GPT-2 in the LibTorch C++ frontend, inference only, numerically matching transformers'
// GPT2Model / GPT2LMHeadModel.
//
// Parameter names and layouts are those of the Hugging Face files (named_parameters() yields
// "wte.weight", "h.0.attn.c_attn.weight", ...), so loading is a name lookup. Conv1D weights are
// [in, out]: y = x W + b, computed with one addmm. The unembedding is tied to wte unless the file
// carries its own lm_head.weight.
#include <cstdint>
#include <functional>
#include <set>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "config.hpp"
#include "saelab/models/hooks.hpp"

namespace saelab::gpt2 {

using models::HookKind;
using models::HookPoint;
using models::RunPlan;

// Conv1D as GPT-2 stores it: weight [in, out], bias [out].
class Conv1DImpl : public torch::nn::Module {
 public:
  Conv1DImpl(std::int64_t in, std::int64_t out);
  torch::Tensor forward(const torch::Tensor& x);  // [..., in] -> [..., out]
  torch::Tensor weight, bias;
};
TORCH_MODULE(Conv1D);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(std::int64_t d, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // [d]
  double eps;
};
TORCH_MODULE(LayerNorm);

// An embedding table [n, d] (wte, wpe) or an untied unembedding (lm_head).
class TableImpl : public torch::nn::Module {
 public:
  TableImpl(std::int64_t n, std::int64_t d);
  torch::Tensor weight;  // [n, d]
};
TORCH_MODULE(Table);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const Config& cfg, std::int64_t layer);
  // x [batch, seq, d], mask [seq, seq] additive (0 or -inf) -> [batch, seq, d]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  Conv1D c_attn{nullptr}, c_proj{nullptr};
  std::int64_t n_head;
  double scale;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const Config& cfg);
  torch::Tensor hidden(const torch::Tensor& x);  // [batch, seq, d] -> [batch, seq, d_mlp]
  torch::Tensor out(const torch::Tensor& h);     // [batch, seq, d_mlp] -> [batch, seq, d]
  Conv1D c_fc{nullptr}, c_proj{nullptr};
  Activation activation;
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const Config& cfg, std::int64_t layer);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask, const RunPlan& plan);
  LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  std::int64_t layer;
};
TORCH_MODULE(Block);

class Gpt2Impl : public torch::nn::Module {
 public:
  // Parameters are allocated uninitialised: the loader assigns every one of them.
  // untied_head: register lm_head.weight [vocab, d] instead of reading W_U from wte.
  Gpt2Impl(const Config& cfg, bool untied_head);

  // tokens [batch, seq] int64 -> logits [batch, seq, vocab] when plan.unembed, else the residual
  // stream [batch, seq, d] where the plan stopped (after ln_f when plan.final_ln).
  torch::Tensor run(const torch::Tensor& tokens, const RunPlan& plan);

  const torch::Tensor& unembedding() const;  // W_U^T: [vocab, d]
  const Config& config() const { return cfg_; }

  Table wte{nullptr}, wpe{nullptr}, lm_head{nullptr};
  torch::nn::ModuleList h{nullptr};
  LayerNorm ln_f{nullptr};

 private:
  Config cfg_;
};
TORCH_MODULE(Gpt2);

}  // namespace saelab::gpt2
