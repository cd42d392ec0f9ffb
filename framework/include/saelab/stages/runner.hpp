#pragma once
// Runs an experiment's stages in a run directory.
//
// Run directory layout:
//   config.yaml            the experiment file as given
//   config.resolved.yaml   every option with defaults filled in (hash checked on --resume)
//   saelab.log             everything logged during the run
//   run.json               stages completed, with timestamps
//   store/                 harvested activations (unless harvest.store_dir points elsewhere)
//   checkpoints/, metrics.jsonl, sae/   training
//   eval.json              evaluation
//   report/index.html      report
// A run never overwrites an existing run directory unless --overwrite (start over) or --resume
// (continue; refused if the resolved config changed, unless --force).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "saelab/config/config.hpp"
#include "saelab/core/export.hpp"

namespace saelab {

class EvalCache;

struct SAELAB_API RunRequest {
  std::filesystem::path config_file;
  std::vector<ConfigOverride> overrides;
  std::filesystem::path out_dir;    // empty: runs/<name>
  std::vector<std::string> stages;  // empty: the config's `stages`
  bool overwrite = false;
  bool resume = false;
  bool force = false;
  std::filesystem::path sae_dir;  // evaluate/report an existing SAELens directory instead
  // A run directory whose finished harvest this run uses (a sweep's): its harvest record is copied
  // into this run's run.json and the harvest stage is not run here.
  std::filesystem::path shared_harvest_run;
  // Model runs evaluation may reuse (a sweep shares one across its runs); null: none kept.
  std::shared_ptr<EvalCache> eval_cache;
};

// Throws ConfigError/UsageError (exit 2) or Error (exit 1). Returns the run directory.
SAELAB_API std::filesystem::path run_experiment(const RunRequest& request);

}  // namespace saelab
