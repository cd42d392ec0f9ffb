#include "saelab/stages/inspect.hpp"

#include "saelab/config/config.hpp"
#include "saelab/config/experiment.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/runtime.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "stages.hpp"

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
  in.rows = row_filter(cfg.options, in.source->info());
  in.corpus = corpus_config(cfg.options);
  in.store = registry.create<ActivationStore>(cfg.options.plugin("store"), pc);
  const std::string& store_dir = cfg.options.string("harvest.store_dir");
  in.run_dir = sae_dir.parent_path();
  if (fs::exists(in.run_dir / "config.resolved.yaml"))
    in.store_dir = store_dir.empty() ? in.run_dir / "store" : fs::path(store_dir);
  else
    in.run_dir.clear();
  SAELAB_CHECK(in.source->info().hooks.count(in.hook) > 0, UsageError, "the SAE in '", sae_dir.string(),
               "' reads hook '", in.hook, "', which model '", in.source->info().model_id, "' does not have");
  return in;
}

ReferenceRows open_reference_rows(Inspection& in, const std::vector<fs::path>& text,
                                  std::int64_t max_tokens) {
  ReferenceRows r;
  if (!text.empty()) {
    CorpusConfig c = in.corpus;
    c.paths = text;
    r.tokens = std::make_unique<TokenBatches>(c, *in.source);
    TokenScanOptions t;
    t.max_tokens = max_tokens;
    t.rows = in.rows;
    r.scan = token_feature_scan(*in.source, *r.tokens, in.hook, t);
    return r;
  }
  r.reader = corpus_order_reader(*in.store, in.store_dir);
  if (r.reader) r.scan = store_feature_scan(*r.reader, max_tokens);
  return r;
}

LatentReference inspection_reference(Inspection& in, const std::vector<fs::path>& text,
                                     std::int64_t max_tokens, const std::vector<std::int64_t>& keep) {
  ReferenceRows rows = open_reference_rows(in, text, max_tokens);
  if (!rows.scan) return {};
  LatentReference ref = reference_statistics(*rows.scan, *in.sae.sae, keep);
  log::info("reference: ", ref.description);
  return ref;
}

}  // namespace saelab
