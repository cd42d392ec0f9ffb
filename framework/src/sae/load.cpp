// Loading a saved SAE directory into its architecture's plugin (sae_load.hpp).
#include "saelab/sae/load.hpp"

#include "saelab/core/error.hpp"
#include "saelab/core/options.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

std::string loaded_sae_plugins(const Registry& registry) {
  std::string s;
  for (const auto& n : registry.names("sae")) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? std::string("(none)") : s;
}

// The plugin's defaults, overridden by the cfg.json keys that are its options (d_in, d_sae, k, ...).
Options options_from_cfg(const FactoryInfo& f, const nlohmann::json& cfg) {
  Options opts = default_options(f.schema, "sae");
  for (const auto& spec : f.schema.specs()) {
    auto it = cfg.find(spec.key);
    if (it == cfg.end() || it->is_null()) continue;
    if (spec.type == OptionType::Int && it->is_number_integer())
      opts.set_given(spec.key, it->get<std::int64_t>());
    else if (spec.type == OptionType::Float && it->is_number())
      opts.set_given(spec.key, it->get<double>());
  }
  return opts;
}

}  // namespace

LoadedSae load_sae(const Registry& registry, const fs::path& dir, const PluginContext& ctx) {
  SaeDirectory saved = load_sae_directory(dir);
  const std::string arch = saved.cfg.value("architecture", "");
  const FactoryInfo* f = registry.find_by_tag("sae", arch);
  SAELAB_CHECK(f, Error, "'", (dir / "cfg.json").string(), "': no loaded SAE plugin handles architecture '",
               arch, "'; loaded SAE plugins: ", loaded_sae_plugins(registry),
               " (load the plugin that declares it, or check the architecture name)");
  LoadedSae out;
  out.sae = registry.create<SaeArchitecture>(f->name, options_from_cfg(*f, saved.cfg), ctx);
  TensorMap weights;
  for (auto& [name, t] : saved.weights) weights[name] = t.to(torch::kFloat32);
  out.sae->load_state(weights);
  out.sae->to(ctx.device);
  out.meta = sae_meta_from_cfg(saved.cfg, (dir / "cfg.json").string());
  return out;
}

}  // namespace saelab
