#pragma once
// Hook points of GPT-2, named as TransformerLens names them:
//   blocks.{L}.hook_resid_pre     input of block L                         [batch, seq, n_embd]
//   blocks.{L}.hook_attn_out      attention output (after c_proj + bias)   [batch, seq, n_embd]
//   blocks.{L}.hook_resid_mid     resid_pre + attn_out                     [batch, seq, n_embd]
//   blocks.{L}.mlp.hook_post      MLP hidden activation after the GELU     [batch, seq, d_mlp]
//   blocks.{L}.hook_mlp_out       MLP output (after c_proj + bias)         [batch, seq, n_embd]
//   blocks.{L}.hook_resid_post    resid_mid + mlp_out (= resid_pre of L+1) [batch, seq, n_embd]
//   ln_final.hook_normalized      ln_f output, what the unembedding reads  [batch, seq, n_embd]
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config.hpp"

namespace saelab::gpt2 {

enum class HookKind { ResidPre, AttnOut, ResidMid, MlpPost, MlpOut, ResidPost, LnFinal };

struct HookPoint {
  HookKind kind = HookKind::ResidPre;
  std::int64_t layer = 0;  // n_layer for LnFinal, so points order by position in the forward

  bool operator<(const HookPoint& o) const {
    return layer != o.layer ? layer < o.layer : static_cast<int>(kind) < static_cast<int>(o.kind);
  }
  bool operator==(const HookPoint& o) const { return kind == o.kind && layer == o.layer; }
};

// Throws ConfigError naming the hook and listing the valid forms when `name` is not a hook of a
// model with these sizes.
HookPoint parse_hook(const std::string& name, const Config& cfg);
std::string hook_name(const HookPoint& h);
// Every hook point -> its width.
std::map<std::string, std::int64_t> all_hooks(const Config& cfg);
// True for hooks whose activation lives in the residual stream (writes to it are read by W_U).
bool is_residual(HookKind kind);

}  // namespace saelab::gpt2
