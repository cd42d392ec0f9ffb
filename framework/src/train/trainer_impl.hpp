#pragma once
// Private to the trainer's sources: the state of one training run, shared by the loop
// (trainer_loop.cpp), checkpoint save/restore (trainer_state.cpp) and outputs (trainer_output.cpp).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "saelab/train/trainer.hpp"
#include "saelab/train/adam.hpp"
#include "saelab/train/checkpoint.hpp"
#include "saelab/train/latent_stats.hpp"
#include "saelab/train/schedule.hpp"

namespace saelab {

// What one rank's micro-batches add up to in one step; summed over ranks (one all-reduce) they
// give the global batch's values.
struct StepSums {
  torch::Tensor counts;       // [d_sae] int64 rows in which each latent fired
  std::vector<double> terms;  // each loss term summed over micro-batches (each a mean over rows)
  double residual = 0;        // Σ ‖y − ŷ‖²   (log steps only)
  double sq_norm = 0;         // Σ ‖y‖²
  torch::Tensor target_sum;   // [d_out] float64 Σ y
  bool stop = false;          // this rank was asked to stop (SIGINT/SIGTERM)
  std::vector<std::vector<double>> loss_sums;  // each loss's step_sums() (Loss::end_step)
};

// 1 − Σ‖y − ŷ‖² / Σ‖y − ȳ‖² over a batch (SAELens's explained variance), from the sums above:
// Σ‖y − ȳ‖² = Σ‖y‖² − ‖Σy‖² / rows.
double explained_variance(double residual, double sq_norm, const torch::Tensor& sum, std::int64_t rows);

struct Trainer::Impl {
  TrainerConfig cfg;
  TrainerInputs in;
  std::function<void(const StepMetrics&)> progress;
  std::function<void(const std::string&)> warn;

  // Run state: everything here is saved in a checkpoint.
  std::int64_t step = 0;    // optimizer steps taken
  std::int64_t tokens = 0;  // rows trained on
  double input_scale = 1.0;
  double output_scale = 1.0;  // transcoders: the targets' own scale
  std::unique_ptr<Adam> adam;
  std::unique_ptr<DeadLatentTracker> dead;
  std::unique_ptr<FeatureDensity> density;
  at::Generator gen;  // resampling draws

  // Derived or bookkeeping (not saved).
  LrSchedule schedule;
  std::set<std::int64_t> resample_at;
  torch::Device device = torch::kCPU;
  std::vector<torch::Tensor> params;  // the SAE's parameters, in module order
  std::filesystem::path last_checkpoint;
  std::int64_t last_checkpoint_step = -1;
  std::chrono::steady_clock::time_point started, last_log;
  std::int64_t tokens_at_last_log = 0;
  StepMetrics last_metrics;
  // Data parallelism (null group: one process).
  dist::ProcessGroup* group = nullptr;
  std::unique_ptr<dist::GradientReducer> reducer;
  bool stop_voted = false;  // some rank was asked to stop during the last step
  // Between Trainer::start and Trainer::finish.
  bool running = false;
  RunOptions opts;
  TrainResult result;
  std::shared_ptr<void> signals;  // the SIGINT/SIGTERM handlers, restored when released

  Impl(TrainerConfig c, TrainerInputs i);

  std::filesystem::path checkpoints_dir() const { return in.run_dir / "checkpoints"; }
  std::int64_t total_steps() const { return cfg.total_steps(); }
  nlohmann::json identity() const;  // what the config hash covers
  std::string config_hash() const;

  // trainer_state.cpp
  void init_fresh();  // scale from NormStats or estimated; latent statistics from zero
  std::filesystem::path save_checkpoint();
  nlohmann::json loss_states() const;  // Loss::state() of the stateful terms, by name
  void restore_loss_states(const nlohmann::json& states, const std::string& where);
  // Restores from the newest valid checkpoint; false when there is none.
  bool resume(bool force);

  // trainer_loop.cpp
  struct Batch {
    torch::Tensor x;       // [batch, d_in] float32, scaled, on the SAE's device
    torch::Tensor target;  // [batch, d_out] the same for the target hook; undefined for an SAE
  };
  Batch next_batch(std::int64_t part = 0, std::int64_t parts = 1);  // rows [part·n, (part+1)·n)
  // Rows [part · n / parts, (part + 1) · n / parts) of a batch and of its target.
  static Batch part_of(const Batch& b, std::int64_t part, std::int64_t parts);
  // A batch on the SAE's device as float32, multiplied by `scale`.
  torch::Tensor scaled(const torch::Tensor& batch, double scale) const;
  torch::Tensor next_input() { return next_batch().x; }
  // One optimizer step; fills `m` when `log` is set (train/step.cpp).
  void train_step(bool log, StepMetrics& m);
  void micro_step(const Batch& b, const torch::Tensor& dead_mask, bool log, StepSums& sums);

  // train/parallel.cpp
  bool is_main() const { return group == nullptr || group->is_main(); }
  void setup_parallel();                          // checks, the reducer
  void reduce_over_ranks(StepSums& s, bool log);  // one all-reduce of counts, terms, metric sums
  void end_loss_steps(const std::vector<std::vector<double>>& sums, std::int64_t parts);
  void check_ranks_agree(const std::string& when);  // step, tokens and a parameter checksum
  bool advance_step();                              // Trainer::advance without its error translation
  void maybe_resample();
  void log_metrics(StepMetrics& m);

  // trainer_output.cpp
  void append_metrics(const StepMetrics& m) const;
  void append_metrics_event(const nlohmann::json& event) const;  // e.g. a resampling
  void truncate_metrics_after(std::int64_t step) const;
  std::filesystem::path save_final_sae();
  // Fails fast (before training) if the SAE could not be saved with in.sae_meta.
  void check_saveable() const;
};

}  // namespace saelab
