#pragma once
// Hook points of a decoder-only transformer, named as TransformerLens names them. Every source
// whose blocks are "attention then MLP, each added to the residual stream" (GPT-2, Llama) has
// the same eight kinds:
//   blocks.{L}.hook_resid_pre     input of block L                          [batch, seq, d_model]
//   blocks.{L}.hook_attn_out      attention output (after its projection)   [batch, seq, d_model]
//   blocks.{L}.hook_resid_mid     resid_pre + attn_out                      [batch, seq, d_model]
//   blocks.{L}.ln2.hook_normalized  the MLP's input: norm(resid_mid)         [batch, seq, d_model]
//                                 (what a transcoder of the MLP reads)
//   blocks.{L}.mlp.hook_post      MLP hidden activation (GPT-2: after GELU; [batch, seq, d_mlp]
//                                 Llama: silu(gate) * up)
//   blocks.{L}.hook_mlp_out       MLP output (after its projection)         [batch, seq, d_model]
//   blocks.{L}.hook_resid_post    resid_mid + mlp_out (= resid_pre of L+1)  [batch, seq, d_model]
//   ln_final.hook_normalized      final norm's output, what W_U reads       [batch, seq, d_model]
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::models {

enum class HookKind { ResidPre, AttnOut, ResidMid, MlpIn, MlpPost, MlpOut, ResidPost, LnFinal };

struct SAELAB_API HookPoint {
  HookKind kind = HookKind::ResidPre;
  std::int64_t layer = 0;  // n_layer for LnFinal, so points order by position in the forward

  bool operator<(const HookPoint& o) const {
    return layer != o.layer ? layer < o.layer : static_cast<int>(kind) < static_cast<int>(o.kind);
  }
  bool operator==(const HookPoint& o) const { return kind == o.kind && layer == o.layer; }
};

// What hook names a model has: its family (for messages) and sizes.
struct SAELAB_API HookShape {
  std::string family;  // "GPT-2", "Llama"
  std::int64_t n_layer = 0;
  std::int64_t d_model = 0;
  std::int64_t d_mlp = 0;
};

// Throws ConfigError naming the hook and listing the valid forms when `name` is not a hook of a
// model of this shape.
SAELAB_API HookPoint parse_hook(const std::string& name, const HookShape& shape);
SAELAB_API std::string hook_name(const HookPoint& h);
// Every hook point -> its width.
SAELAB_API std::map<std::string, std::int64_t> all_hooks(const HookShape& shape);
// Every hook name -> its layer (ln_final.hook_normalized: n_layer, after the last block).
SAELAB_API std::map<std::string, std::int64_t> all_hook_layers(const HookShape& shape);
// True for hooks whose activation lives in the residual stream (writes to it are read by W_U).
SAELAB_API bool is_residual(HookKind kind);

// Called at each hook point the forward passes through that is in RunPlan::hooks. It may read
// `act` or assign a replacement of the same shape.
using HookVisitor = std::function<void(const HookPoint& point, torch::Tensor& act)>;

// What one forward pass computes: how far it runs and where it stops to show the visitor.
struct SAELAB_API RunPlan {
  std::int64_t n_blocks = 0;  // run blocks [0, n_blocks), then visit resid_pre of block n_blocks
  bool final_ln = false;      // then the final norm
  bool unembed = false;       // then the unembedding (logits)
  std::set<HookPoint> hooks;  // points at which `visit` is called
  HookVisitor visit;

  // Calls visit(point, act) when `point` is one of `hooks`.
  void at(const HookPoint& point, torch::Tensor& act) const {
    if (visit && hooks.count(point)) visit(point, act);
  }
};

// The plan that reaches every point in `points` and stops after the last block they need
// (resid_pre of L needs blocks < L; any other point of block L needs block L).
SAELAB_API RunPlan capture_plan(const std::set<HookPoint>& points, std::int64_t n_layer);

}  // namespace saelab::models
