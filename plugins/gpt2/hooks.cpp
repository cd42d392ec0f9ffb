#include "hooks.hpp"

#include <array>
#include <utility>

#include "saelab/core/error.hpp"

namespace saelab::gpt2 {
namespace {

constexpr std::array<std::pair<const char*, HookKind>, 6> kBlockHooks = {{
    {"hook_resid_pre", HookKind::ResidPre},
    {"hook_attn_out", HookKind::AttnOut},
    {"hook_resid_mid", HookKind::ResidMid},
    {"mlp.hook_post", HookKind::MlpPost},
    {"hook_mlp_out", HookKind::MlpOut},
    {"hook_resid_post", HookKind::ResidPost},
}};
constexpr const char* kLnFinal = "ln_final.hook_normalized";

[[noreturn]] void unknown(const std::string& name, const Config& cfg, const std::string& why) {
  throw ConfigError(cat("hook '", name, "' ", why,
                        ". GPT-2 hooks: blocks.{L}.hook_resid_pre, blocks.{L}.hook_attn_out, "
                        "blocks.{L}.hook_resid_mid, blocks.{L}.mlp.hook_post, "
                        "blocks.{L}.hook_mlp_out, blocks.{L}.hook_resid_post with 0 <= L < ",
                        cfg.n_layer, ", and ", kLnFinal));
}

}  // namespace

HookPoint parse_hook(const std::string& name, const Config& cfg) {
  if (name == kLnFinal) return {HookKind::LnFinal, cfg.n_layer};
  const std::string prefix = "blocks.";
  if (name.compare(0, prefix.size(), prefix) != 0) unknown(name, cfg, "is not a GPT-2 hook");
  std::size_t pos = prefix.size(), end = pos;
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  if (end == pos || end - pos > 6 || end >= name.size() || name[end] != '.')
    unknown(name, cfg, "has no layer number after 'blocks.'");
  if (name[pos] == '0' && end - pos > 1) unknown(name, cfg, "has a layer number with a leading 0");
  const std::int64_t layer = std::stoll(name.substr(pos, end - pos));
  if (layer >= cfg.n_layer)
    unknown(name, cfg, cat("names layer ", layer, " but the model has ", cfg.n_layer, " layers"));
  const std::string rest = name.substr(end + 1);
  for (const auto& [suffix, kind] : kBlockHooks)
    if (rest == suffix) return {kind, layer};
  unknown(name, cfg, "is not a GPT-2 hook");
}

std::string hook_name(const HookPoint& h) {
  if (h.kind == HookKind::LnFinal) return kLnFinal;
  for (const auto& [suffix, kind] : kBlockHooks)
    if (kind == h.kind) return cat("blocks.", h.layer, ".", suffix);
  throw Error("hook_name: unknown hook kind");
}

std::map<std::string, std::int64_t> all_hooks(const Config& cfg) {
  std::map<std::string, std::int64_t> out;
  for (std::int64_t l = 0; l < cfg.n_layer; ++l)
    for (const auto& [suffix, kind] : kBlockHooks)
      out[hook_name({kind, l})] = kind == HookKind::MlpPost ? cfg.d_mlp() : cfg.n_embd;
  out[kLnFinal] = cfg.n_embd;
  return out;
}

bool is_residual(HookKind kind) {
  return kind != HookKind::MlpPost;
}

}  // namespace saelab::gpt2
