// Experiment YAML through the whole validation path `saelab validate` takes: YAML parsing, the
// schema of every stage and plugin, the cross-field checks, then the typed settings each stage
// reads (run, corpus, harvest, trainer).
#include "../fuzz_support.hpp"
#include "saelab/config/config.hpp"
#include "saelab/config/experiment.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/train/trainer.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  saelab::fuzz::quiet_process();
  (void)saelab::plugin_registry();
  (void)saelab::experiment_schema();
  return 0;
}

SAELAB_FUZZ_TARGET("experiment") {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto cfg =
      saelab::parse_experiment(text, "fuzz.yaml", saelab::experiment_schema(), saelab::plugin_registry());
  (void)saelab::run_settings(cfg.options);
  (void)saelab::corpus_config(cfg.options);
  (void)saelab::harvest_settings(cfg.options);
  (void)saelab::trainer_config_from(cfg.options.section("train"));
  // The resolved snapshot is what a run stores and a resume reads back: it must parse to itself.
  const auto again = saelab::parse_experiment(cfg.resolved, "resolved.yaml", saelab::experiment_schema(),
                                              saelab::plugin_registry());
  if (again.hash != cfg.hash)
    saelab::fuzz::report_finding("experiment", "resolved YAML does not parse back to itself",
                                 cfg.resolved.c_str());
}
