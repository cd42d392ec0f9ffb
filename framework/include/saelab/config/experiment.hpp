#pragma once
// The experiment schema (every framework option, with defaults and descriptions) and the typed
// settings the stages read from validated Options.
//
//   name, seed, device, threads, stages     run-wide settings
//   source:  {plugin: gpt2, ...}            ActivationSource plugin
//   corpus:  paths, format, context_size    token sequences (framework/include/saelab/corpus.hpp)
//   harvest: hook, tokens, batch_sequences  source -> store
//   store:   {plugin: hdf5, ...}            ActivationStore plugin
//   train:   sae, losses, lr, ...           store -> SAE (SAELens directory)
//   evaluate: evaluator, tokens, ...        SAE spliced into the source -> eval.json
//   report:  reporter, ...                  -> report/index.html
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "saelab/config/config.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/core/export.hpp"
#include "saelab/core/options.hpp"

namespace saelab {

inline const std::vector<std::string> kStageNames = {"harvest", "train", "evaluate", "report"};

SAELAB_API const OptionSchema& experiment_schema();

// The `distributed` section: how the ranks of a data-parallel run talk (docs/distributed.md).
struct SAELAB_API DistributedSettings {
  std::string backend = "auto";
  double timeout_s = 600;
  std::int64_t check_every_steps = 100;
  std::int64_t bucket_bytes = 25 << 20;
  bool overlap = true;
};

struct SAELAB_API RunSettings {
  std::string name;
  DistributedSettings distributed;
  std::uint64_t seed = 0;
  std::string device = "auto";
  std::int64_t threads = -1;  // <= 0: all cores
  std::vector<std::string> stages;
};
SAELAB_API RunSettings run_settings(const Options& o);

SAELAB_API CorpusConfig corpus_config(const Options& o);

struct SAELAB_API HarvestSettings {
  std::string hook;
  std::int64_t tokens = 0;
  std::int64_t batch_sequences = 32;
  bool exclude_bos = true;
  std::int64_t exclude_first_positions = 0;  // after BOS
  bool exclude_special_tokens = false;
  std::filesystem::path store_dir;  // empty: <run>/store
};
SAELAB_API HarvestSettings harvest_settings(const Options& o);

// Writes the docs/config.md table for the experiment schema and every registered plugin.
SAELAB_API std::string config_reference_markdown(const Registry& registry);

}  // namespace saelab
