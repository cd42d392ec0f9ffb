#include "saelab/models/hooks.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "saelab/core/error.hpp"

namespace saelab::models {
namespace {

constexpr std::array<std::pair<const char*, HookKind>, 7> kBlockHooks = {{
    {"hook_resid_pre", HookKind::ResidPre},
    {"hook_attn_out", HookKind::AttnOut},
    {"hook_resid_mid", HookKind::ResidMid},
    {"ln2.hook_normalized", HookKind::MlpIn},
    {"mlp.hook_post", HookKind::MlpPost},
    {"hook_mlp_out", HookKind::MlpOut},
    {"hook_resid_post", HookKind::ResidPost},
}};
constexpr const char* kLnFinal = "ln_final.hook_normalized";

[[noreturn]] void unknown(const std::string& name, const HookShape& shape, const std::string& why) {
  throw ConfigError(
      cat("hook '", name, "' ", why, ". ", shape.family,
          " hooks: blocks.{L}.hook_resid_pre, blocks.{L}.hook_attn_out, "
          "blocks.{L}.hook_resid_mid, blocks.{L}.ln2.hook_normalized, blocks.{L}.mlp.hook_post, "
          "blocks.{L}.hook_mlp_out, blocks.{L}.hook_resid_post with 0 <= L < ",
          shape.n_layer, ", and ", kLnFinal));
}

}  // namespace

HookPoint parse_hook(const std::string& name, const HookShape& shape) {
  if (name == kLnFinal) return {HookKind::LnFinal, shape.n_layer};
  const std::string prefix = "blocks.";
  const std::string not_one = cat("is not a ", shape.family, " hook");
  if (name.compare(0, prefix.size(), prefix) != 0) unknown(name, shape, not_one);
  std::size_t pos = prefix.size(), end = pos;
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  if (end == pos || end - pos > 6 || end >= name.size() || name[end] != '.')
    unknown(name, shape, "has no layer number after 'blocks.'");
  if (name[pos] == '0' && end - pos > 1) unknown(name, shape, "has a layer number with a leading 0");
  const std::int64_t layer = std::stoll(name.substr(pos, end - pos));
  if (layer >= shape.n_layer)
    unknown(name, shape, cat("names layer ", layer, " but the model has ", shape.n_layer, " layers"));
  const std::string rest = name.substr(end + 1);
  for (const auto& [suffix, kind] : kBlockHooks)
    if (rest == suffix) return {kind, layer};
  unknown(name, shape, not_one);
}

std::string hook_name(const HookPoint& h) {
  if (h.kind == HookKind::LnFinal) return kLnFinal;
  for (const auto& [suffix, kind] : kBlockHooks)
    if (kind == h.kind) return cat("blocks.", h.layer, ".", suffix);
  throw Error("hook_name: unknown hook kind");
}

std::map<std::string, std::int64_t> all_hooks(const HookShape& shape) {
  std::map<std::string, std::int64_t> out;
  for (std::int64_t l = 0; l < shape.n_layer; ++l)
    for (const auto& [suffix, kind] : kBlockHooks)
      out[hook_name({kind, l})] = kind == HookKind::MlpPost ? shape.d_mlp : shape.d_model;
  out[kLnFinal] = shape.d_model;
  return out;
}

std::map<std::string, std::int64_t> all_hook_layers(const HookShape& shape) {
  std::map<std::string, std::int64_t> out;
  for (const auto& [name, width] : all_hooks(shape)) out[name] = parse_hook(name, shape).layer;
  return out;
}

bool is_residual(HookKind kind) {
  return kind != HookKind::MlpPost && kind != HookKind::MlpIn;
}

RunPlan capture_plan(const std::set<HookPoint>& points, std::int64_t n_layer) {
  RunPlan plan;
  plan.hooks = points;
  for (const HookPoint& p : points) {
    const std::int64_t needs = p.kind == HookKind::ResidPre ? p.layer : std::min(p.layer + 1, n_layer);
    plan.n_blocks = std::max(plan.n_blocks, needs);
    plan.final_ln = plan.final_ln || p.kind == HookKind::LnFinal;
  }
  return plan;
}

}  // namespace saelab::models
