#include "saelab/stages/inspect.hpp"

#include "saelab/config/config.hpp"
#include "saelab/config/experiment.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/runtime.hpp"

namespace saelab {
namespace fs = std::filesystem;

Inspection open_inspection(const fs::path& run_or_sae, const fs::path& config) {
  fs::path sae_dir, cfg_file = config;
  if (fs::exists(run_or_sae / "config.resolved.yaml")) {
    sae_dir = run_or_sae / "sae";
    if (cfg_file.empty()) cfg_file = run_or_sae / "config.resolved.yaml";
  } else if (fs::exists(run_or_sae / "cfg.json")) {
    sae_dir = run_or_sae;
    if (cfg_file.empty() && fs::exists(run_or_sae.parent_path() / "config.resolved.yaml"))
      cfg_file = run_or_sae.parent_path() / "config.resolved.yaml";
  } else {
    throw UsageError(
        cat("'", run_or_sae.string(),
            "' is neither a run directory (with config.resolved.yaml) nor an SAE directory (with "
            "cfg.json); give the directory saelab run wrote, or a SAELens SAE directory"));
  }
  SAELAB_CHECK(fs::exists(sae_dir / "cfg.json"), UsageError, "no trained SAE at '", sae_dir.string(),
               "'; run the train stage first (saelab train FILE)");
  SAELAB_CHECK(!cfg_file.empty(), UsageError, "'", run_or_sae.string(),
               "' is an SAE directory outside a run, so saelab does not know its model; pass --config "
               "FILE, an experiment file whose source is that model");
  const Registry& registry = plugin_registry();
  ExperimentConfig cfg = load_experiment(cfg_file, experiment_schema(), registry, {});
  const RunSettings rs = run_settings(cfg.options);
  const PluginContext pc{resolve_device(rs.device), rs.seed, {}};
  Inspection in;
  in.source = registry.create<ActivationSource>(cfg.options.plugin("source"), pc);
  in.sae = load_sae(registry, sae_dir, pc);
  in.hook = in.sae.meta.hook_name;
  in.prepend_bos = cfg.options.boolean("corpus.prepend_bos");
  SAELAB_CHECK(in.source->info().hooks.count(in.hook) > 0, UsageError, "the SAE in '", sae_dir.string(),
               "' reads hook '", in.hook, "', which model '", in.source->info().model_id, "' does not have");
  return in;
}

}  // namespace saelab
