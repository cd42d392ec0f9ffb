#pragma once
// The SAE trainer: Adam with a warm-up/decay learning-rate schedule, gradient clipping, inputs
// scaled to mean norm sqrt(d_in), dead-latent tracking, neuron resampling (Towards Monosemanticity),
// metrics, checkpoints with exact resume, and the final save in the SAELens format.
//
// Run directory written by Trainer::run:
//   metrics.jsonl                one JSON object per logged step (see StepMetrics keys below)
//   checkpoints/step-<N>/        the last `keep_checkpoints` checkpoints (train/checkpoint.hpp)
//   sae/                         the trained SAE, input scale folded in: cfg.json,
//                                sae_weights.safetensors, sparsity.safetensors
//
// Metric keys (StepMetrics::values and metrics.jsonl): loss (sum of the terms), loss.<term> (each
// Loss plugin under its name()), loss.<term>.<key> (Loss::metrics(), e.g. loss.lp_anneal.p), mse (Σ_d (x -
// x̂)², mean over the batch, in scaled units), explained_variance, l0 (mean active latents per row),
// dead_fraction, lr, grad_norm (before clipping), tokens_per_s, elapsed_s, eta_s.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/interfaces/callback.hpp"
#include "saelab/interfaces/loss.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/core/options.hpp"
#include "saelab/dist/grad_reducer.hpp"
#include "saelab/dist/process_group.hpp"
#include "saelab/formats/sae_dir.hpp"

namespace saelab {

// Everything that shapes training. Plain data: the integrator fills it from YAML through
// trainer_config_from(), tests fill it directly.
struct SAELAB_API TrainerConfig {
  // Data
  std::int64_t batch_size = 4096;  // rows per step; must equal the reader's batch_rows
  // Gradient accumulation: each step's batch (each rank's slice of it) is split into this many
  // equal parts, one forward and backward each, and their gradients summed in order.
  std::int64_t micro_batches = 1;
  std::int64_t training_tokens = 100'000'000;  // rows seen in training (rounded up to whole steps)
  std::uint64_t seed = 42;
  // Optimizer
  double lr = 3e-4;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  std::int64_t lr_warmup_steps = 1000;  // linear ramp from lr/warmup to lr
  double lr_decay_fraction = 0.2;       // the last fraction of steps decays linearly ...
  double lr_floor = 0.0;                // ... towards lr * lr_floor
  double grad_clip_norm = 1.0;          // global gradient-norm clip; 0 disables
  // Input scaling: multiply inputs by sqrt(d_in) / mean_norm, folded back into the saved SAE.
  bool normalize_inputs = true;
  // First batches sampled before training: the input scale when the store has no NormStats, and
  // SaeArchitecture::initialize_from_sample (b_dec = mean / geometric median).
  std::int64_t init_sample_batches = 10;
  // Dead latents and resampling
  std::int64_t dead_window_tokens = 10'000'000;  // dead = not fired for this many rows
  std::vector<std::int64_t> resample_steps;      // steps after which dead latents are resampled
  std::int64_t resample_inputs = 819'200;        // rows scored to pick the new directions
  double resample_encoder_scale = 0.2;           // × mean alive encoder norm
  // Bookkeeping (not part of the config hash: changing them never changes the weights)
  std::int64_t metrics_every_steps = 100;
  std::int64_t checkpoint_every_tokens = 0;  // 0: only at interruption and at the end
  std::int64_t keep_checkpoints = 3;         // ≥ 2

  std::int64_t total_steps() const;  // ceil(training_tokens / batch_size)
  // Fields that determine the trained weights, as JSON (input to the config hash).
  nlohmann::json identity_json() const;
  // Throws ConfigError naming the field, its value and what is allowed.
  void validate() const;
};

// The `train` section's options: every TrainerConfig field with default, bounds and description.
SAELAB_API OptionSchema train_schema();
SAELAB_API TrainerConfig trainer_config_from(const Options& opts);

// Data-parallel training (docs/distributed.md). Every rank reads the same shuffled global batch of
// batch_size rows and trains on its slice [rank · B/W, (rank + 1) · B/W); gradients are averaged
// over ranks before the step, fire counts and metrics are summed, so every rank holds the same
// parameters, and the run is the single-process run with batch B. Rank 0 writes checkpoints,
// metrics.jsonl and the SAE.
struct SAELAB_API DataParallel {
  std::shared_ptr<dist::ProcessGroup> group;  // null: this process trains alone
  std::int64_t check_every_steps = 100;       // compare a parameter checksum across ranks; 0: never
  std::int64_t bucket_bytes = 25 << 20;       // gradient all-reduce buckets (DDP's default)
  bool overlap = true;                        // start a bucket's all-reduce during backward
};

struct SAELAB_API TrainerInputs {
  ActivationReader* reader = nullptr;  // yields [batch_size, d_in] rows; the trainer drives its cursor
  // Transcoders: the target hook's rows [batch_size, d_out], row for row the same tokens as
  // `reader` (stores of one harvest read with the same options; the trainer compares the rows'
  // sequence and position every step). Null for an SAE, whose target is its input.
  ActivationReader* target_reader = nullptr;
  std::optional<NormStats> target_norm_stats;  // the target store's, as norm_stats
  std::shared_ptr<SaeArchitecture> sae;
  std::vector<std::shared_ptr<Loss>> losses;
  std::vector<std::shared_ptr<TrainerCallback>> callbacks;
  std::filesystem::path run_dir;
  std::optional<NormStats> norm_stats;  // from the store; estimated from the data when absent
  // Options of the SAE and loss plugins (and anything else that defines the run); hashed with the
  // TrainerConfig so a resume with different settings is refused.
  nlohmann::json identity = nlohmann::json::object();
  // cfg.json keys the trainer cannot know (model_name, hook_name, context_size, ...).
  SaeMeta sae_meta;
  DataParallel parallel;
};

struct SAELAB_API RunOptions {
  bool resume = false;         // continue from the newest valid checkpoint in run_dir
  bool force = false;          // resume even if the config hash differs
  bool handle_signals = true;  // SIGINT/SIGTERM: checkpoint and return "interrupted"
  bool save_sae = true;        // write run_dir/sae at the end
};

struct SAELAB_API TrainResult {
  std::string status;  // "completed" | "interrupted" (signal) | "stopped" (a callback asked)
  std::int64_t steps = 0;
  std::int64_t tokens = 0;
  double input_scale = 1.0;   // factor the inputs were multiplied by
  double output_scale = 1.0;  // ... and the targets (transcoders; 1 otherwise)
  std::optional<std::int64_t> resumed_from_step;
  std::filesystem::path last_checkpoint;  // empty if none was written
  std::filesystem::path sae_dir;          // empty unless completed and saved
  StepMetrics last_metrics;
  dist::ReduceStats all_reduce;  // data-parallel runs: what the gradient all-reduce cost
};

// Process-wide stop flag set by the signal handlers; also settable from code (tests, a GUI).
SAELAB_API void request_stop();
SAELAB_API bool stop_requested();
SAELAB_API void clear_stop_request();

class SAELAB_API Trainer {
 public:
  Trainer(TrainerConfig config, TrainerInputs inputs);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Called at every metrics step, after metrics.jsonl is written (the CLI draws its progress bar).
  void on_progress(std::function<void(const StepMetrics&)> fn);
  // Warnings (a corrupt checkpoint skipped, a forced resume); default: log::warn.
  void on_warning(std::function<void(const std::string&)> fn);

  // Trains to the end or until interrupted. Throws Error on a non-finite loss (naming the step),
  // on a refused resume and on I/O failures; the last good checkpoint is left in place.
  TrainResult run(const RunOptions& opts = {});

  // run() in three parts, for several trainers stepped in turn over one shared reader
  // (data/shared_reader.hpp): start() initialises or resumes, advance() takes one optimizer step
  // (with its resampling, metrics and checkpoint) and says whether another is due, finish() writes
  // what the end of the run writes. Trainers that start in one order finish in the reverse one
  // (each restores the signal handlers it found).
  std::int64_t start(const RunOptions& opts = {});  // returns the step it starts from
  bool advance();
  TrainResult finish();

  // SHA-256 over the config identity, the SAE's shape/architecture and TrainerInputs::identity.
  std::string config_hash() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace saelab
