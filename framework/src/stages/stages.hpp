#pragma once
// Internal: what every stage receives. Not installed.
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "saelab/config/config.hpp"
#include "saelab/config/experiment.hpp"
#include "saelab/core/registry.hpp"
#include "saelab/stages/runner.hpp"

namespace saelab {

class ActivationSource;
class ActivationStore;
class ActivationReader;
struct RowFilter;
struct SourceInfo;

struct StageContext {
  StageContext(const ExperimentConfig& c, const Registry& r, const RunRequest& q, std::filesystem::path dir,
               PluginContext pc)
      : config(c), registry(r), request(q), run_dir(std::move(dir)), plugin_ctx(std::move(pc)) {}

  const ExperimentConfig& config;
  const Registry& registry;
  const RunRequest& request;
  std::filesystem::path run_dir;
  PluginContext plugin_ctx;
  bool resume = false;
  bool overwrite = false;
  DistributedSettings distributed;  // used when plugin_ctx.group is set

  const Options& options() const { return config.options; }
  std::filesystem::path store_dir() const;
  // Created on first use and shared between stages of one run.
  std::shared_ptr<ActivationSource> source();
  std::shared_ptr<ActivationStore> store();

 private:
  std::shared_ptr<ActivationSource> source_;
  std::shared_ptr<ActivationStore> store_;
};

// The positions harvest stores (and evaluate and report measure): after BOS (when there is one
// and harvest.exclude_bos), after harvest.exclude_first_positions more, and without the source's
// special tokens when harvest.exclude_special_tokens. Fails on the option when nothing is left.
RowFilter row_filter(const Options& o, const SourceInfo& info);

// An unshuffled reader over a store when it is complete (the report and reference statistics
// scan its rows instead of running the model); null otherwise.
std::unique_ptr<ActivationReader> corpus_order_reader(ActivationStore& store,
                                                      const std::filesystem::path& dir);

nlohmann::json run_harvest(StageContext& ctx);
nlohmann::json run_train(StageContext& ctx);
nlohmann::json run_evaluate(StageContext& ctx);
nlohmann::json run_report(StageContext& ctx);

}  // namespace saelab
