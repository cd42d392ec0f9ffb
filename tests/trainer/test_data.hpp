#pragma once
// Shared fixtures for the trainer tests: planted-dictionary data and a one-call training helper.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/options.hpp"
#include "saelab/core/registry.hpp"
#include "saelab/train/trainer.hpp"
#include "support/support.hpp"
#include "synthetic_dictionary.hpp"
#include "test_models.hpp"

namespace saelab::test {

// n rows of a planted dictionary, keys 0..n-1 (the same rows every time for the same config).
torch::Tensor planted_rows(const synthetic::Dictionary& dict, std::int64_t n);

// The plugins the trainer tests use (synthetic, sae_relu_l1, sae_topk, losses), loaded from the
// build tree through the plugin host into a registry of the tests' own.
Registry& plugins();
using Values = std::map<std::string, OptionValue>;
// The plugin's defaults with `values` set as if written in a file.
Options plugin_options(const std::string& kind, const std::string& name, const Values& values);

// Everything one training run needs, rebuilt from scratch for each run (as a new process would).
struct RunSpec {
  TrainerConfig cfg;
  torch::Tensor data;    // [n, d_in]
  torch::Tensor target;  // [n, d_out] transcoders: what each row of data must map to; else undefined
  std::int64_t d_sae = 64;
  std::int64_t k = 0;           // > 0: TopK
  double l1 = 0.0;              // > 0: add the L1 term
  std::uint64_t init_seed = 7;  // SAE initialisation
  // When set, the SAE and the loss terms come from these (plugins) instead of TinySae + MseLoss/L1.
  std::function<std::shared_ptr<SaeArchitecture>()> make_sae;
  std::function<std::vector<std::shared_ptr<Loss>>()> make_losses;
  std::vector<std::shared_ptr<Loss>> extra_losses;
  std::vector<std::shared_ptr<TrainerCallback>> callbacks;
  std::filesystem::path run_dir;
};

struct RunOutcome {
  TrainResult result;
  std::shared_ptr<SaeArchitecture> sae;
  std::vector<std::string> warnings;
};

RunOutcome train(const RunSpec& spec, const RunOptions& opts = {});
// Same, with `setup` applied to the freshly initialised SAE before training.
RunOutcome train_with_setup(const RunSpec& spec, const RunOptions& opts,
                            const std::function<void(SaeArchitecture&)>& setup);

// Makes the run use the `sae` plugin (initialised with `seed`) and the named loss plugins, each
// built anew for every run as a new process would.
using LossList = std::vector<std::pair<std::string, Values>>;
void use_plugins(RunSpec& spec, const std::string& sae, const Values& sae_options, const LossList& losses,
                 std::uint64_t seed);

// A run small enough for many variants per test (60 steps of 64 rows, 32 -> 96 latents), with
// checkpoints every 10 steps, metrics every 5 and resampling after steps 20 and 40.
RunSpec small_run(const std::string& name);
// The same run in an existing directory, left as it is (for a resuming process).
RunSpec small_run_in(const std::filesystem::path& run_dir);

// Stops training (through the callback interface) once `step` is reached.
class StopAt : public TrainerCallback {
 public:
  explicit StopAt(std::int64_t step) : step_(step) {}
  bool should_stop(const StepMetrics& m) override { return m.step >= step_; }

 private:
  std::int64_t step_;
};

// Recovery of a planted dictionary by an SAE's decoder rows.
struct Recovery {
  double fraction_recovered = 0.0;  // true features whose best decoder row has cosine ≥ threshold
  double mean_max_cosine = 0.0;
};
// features [n_features, d], decoder [d_sae, d].
Recovery recovery(const torch::Tensor& features, const torch::Tensor& decoder, double threshold);

}  // namespace saelab::test
