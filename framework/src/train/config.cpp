// TrainerConfig: validation, identity (for the config hash) and the `train` option schema.
#include <algorithm>
#include <cmath>
#include <string>

#include "saelab/core/error.hpp"
#include "saelab/core/numbers.hpp"
#include "saelab/train/trainer.hpp"

namespace saelab {
using nlohmann::json;

std::int64_t TrainerConfig::total_steps() const {
  return batch_size > 0 ? (training_tokens + batch_size - 1) / batch_size : 0;
}

json TrainerConfig::identity_json() const {
  json j{{"batch_size", batch_size},
         {"training_tokens", training_tokens},
         {"seed", seed},
         {"lr", lr},
         {"adam_beta1", adam_beta1},
         {"adam_beta2", adam_beta2},
         {"adam_eps", adam_eps},
         {"lr_warmup_steps", lr_warmup_steps},
         {"lr_decay_fraction", lr_decay_fraction},
         {"lr_floor", lr_floor},
         {"grad_clip_norm", grad_clip_norm},
         {"normalize_inputs", normalize_inputs},
         {"init_sample_batches", init_sample_batches},
         {"dead_window_tokens", dead_window_tokens},
         {"resample_steps", resample_steps},
         {"resample_inputs", resample_inputs},
         {"resample_encoder_scale", resample_encoder_scale}};
  if (micro_batches != 1) j["micro_batches"] = micro_batches;  // older checkpoints keep their hash
  return j;
}

namespace {
template <class T>
void check_field(bool ok, const char* key, T value, const char* allowed) {
  SAELAB_CHECK(ok, ConfigError, "train.", key, " = ", value, " is out of range: must be ", allowed);
}
}  // namespace

void TrainerConfig::validate() const {
  check_field(batch_size >= 1, "batch_size", batch_size, "≥ 1");
  check_field(micro_batches >= 1 && batch_size % micro_batches == 0, "micro_batches", micro_batches,
              "≥ 1 and a divisor of train.batch_size");
  check_field(training_tokens >= 1, "training_tokens", training_tokens, "≥ 1");
  check_field(lr > 0 && std::isfinite(lr), "lr", lr, "> 0");
  check_field(adam_beta1 >= 0 && adam_beta1 < 1, "adam_beta1", adam_beta1, "in [0, 1)");
  check_field(adam_beta2 >= 0 && adam_beta2 < 1, "adam_beta2", adam_beta2, "in [0, 1)");
  check_field(adam_eps > 0, "adam_eps", adam_eps, "> 0");
  check_field(lr_warmup_steps >= 0, "lr_warmup_steps", lr_warmup_steps, "≥ 0");
  check_field(lr_decay_fraction >= 0 && lr_decay_fraction <= 1, "lr_decay_fraction", lr_decay_fraction,
              "in [0, 1]");
  check_field(lr_floor >= 0 && lr_floor <= 1, "lr_floor", lr_floor, "in [0, 1]");
  check_field(grad_clip_norm >= 0, "grad_clip_norm", grad_clip_norm, "≥ 0 (0 disables clipping)");
  check_field(init_sample_batches >= 1, "init_sample_batches", init_sample_batches, "≥ 1");
  check_field(dead_window_tokens >= 1, "dead_window_tokens", dead_window_tokens, "≥ 1");
  for (std::int64_t s : resample_steps) {
    check_field(s >= 1 && s < total_steps(), "resample_steps", s,
                "between 1 and total_steps - 1 (training_tokens / batch_size)");
  }
  check_field(resample_inputs >= 1, "resample_inputs", resample_inputs, "≥ 1");
  check_field(resample_encoder_scale > 0, "resample_encoder_scale", resample_encoder_scale, "> 0");
  check_field(metrics_every_steps >= 1, "metrics_every_steps", metrics_every_steps, "≥ 1");
  check_field(checkpoint_every_tokens >= 0, "checkpoint_every_tokens", checkpoint_every_tokens,
              "≥ 0 (0: only when interrupted and at the end)");
  check_field(keep_checkpoints >= 2, "keep_checkpoints", keep_checkpoints,
              "≥ 2 (so a corrupt newest checkpoint always has a predecessor)");
}

OptionSchema train_schema() {
  const TrainerConfig d;
  OptionSchema s;
  s.integer("batch_size", d.batch_size,
            "Rows (tokens) per optimizer step; in a data-parallel run, the global batch over all ranks")
      .at_least(1);
  s.integer("micro_batches", d.micro_batches,
            "Gradient accumulation: split each step's batch into this many parts, one backward each, "
            "gradients summed in order (a single process then computes exactly what as many ranks do)")
      .at_least(1);
  s.integer("training_tokens", d.training_tokens, "Rows seen in training, rounded up to whole batches")
      .at_least(1);
  s.integer("seed", std::int64_t(d.seed), "Seed for resampling and data order").at_least(0);
  s.real("lr", d.lr, "Peak Adam learning rate").above(0);
  s.real("adam_beta1", d.adam_beta1, "Adam β1").at_least(0).at_most(0.999999);
  s.real("adam_beta2", d.adam_beta2, "Adam β2").at_least(0).at_most(0.999999999);
  s.real("adam_eps", d.adam_eps, "Adam ε").above(0);
  s.integer("lr_warmup_steps", d.lr_warmup_steps, "Steps of linear learning-rate warm-up").at_least(0);
  s.real("lr_decay_fraction", d.lr_decay_fraction, "Final fraction of steps with linear lr decay")
      .at_least(0)
      .at_most(1);
  s.real("lr_floor", d.lr_floor, "Decay target as a fraction of lr").at_least(0).at_most(1);
  s.real("grad_clip_norm", d.grad_clip_norm, "Clip the global gradient norm to this (0: off)").at_least(0);
  s.boolean("normalize_inputs", d.normalize_inputs,
            "Scale inputs to mean norm sqrt(d_in); folded into the saved SAE");
  s.integer(
       "init_sample_batches", d.init_sample_batches,
       "Batches sampled before training: input scale (without store statistics) and b_dec initialisation")
      .at_least(1);
  s.integer("dead_window_tokens", d.dead_window_tokens, "A latent not fired for this many tokens is dead")
      .at_least(1);
  s.strings("resample_steps", {}, "Steps after which dead latents are resampled (Towards Monosemanticity)");
  s.integer("resample_every_steps", 0, "Also resample after every multiple of this many steps (0: off)")
      .at_least(0);
  s.integer("resample_inputs", d.resample_inputs, "Inputs scored by loss to pick resampled directions")
      .at_least(1);
  s.real("resample_encoder_scale", d.resample_encoder_scale,
         "New encoder rows: this × mean alive encoder norm")
      .above(0);
  s.integer("metrics_every_steps", d.metrics_every_steps, "Append to metrics.jsonl every this many steps")
      .at_least(1);
  s.integer("checkpoint_every_tokens", d.checkpoint_every_tokens,
            "Write a checkpoint every this many tokens (0: only at stop/end)")
      .at_least(0);
  s.integer("keep_checkpoints", d.keep_checkpoints, "Newest checkpoints kept").at_least(2);
  return s;
}

namespace {
std::vector<std::int64_t> parse_steps(const Options& opts, const std::string& key) {
  std::vector<std::int64_t> out;
  for (const std::string& text : opts.strings(key)) {
    const auto v = parse_integer(text);
    if (!v || *v < 1)
      opts.fail(key, cat("'", text, "' is not a step number (a list of integers ≥ 1 is allowed)"));
    out.push_back(*v);
  }
  return out;
}
}  // namespace

TrainerConfig trainer_config_from(const Options& opts) {
  TrainerConfig c;
  c.batch_size = opts.integer("batch_size");
  c.micro_batches = opts.integer("micro_batches");
  c.training_tokens = opts.integer("training_tokens");
  c.seed = std::uint64_t(opts.integer("seed"));
  c.lr = opts.real("lr");
  c.adam_beta1 = opts.real("adam_beta1");
  c.adam_beta2 = opts.real("adam_beta2");
  c.adam_eps = opts.real("adam_eps");
  c.lr_warmup_steps = opts.integer("lr_warmup_steps");
  c.lr_decay_fraction = opts.real("lr_decay_fraction");
  c.lr_floor = opts.real("lr_floor");
  c.grad_clip_norm = opts.real("grad_clip_norm");
  c.normalize_inputs = opts.boolean("normalize_inputs");
  c.init_sample_batches = opts.integer("init_sample_batches");
  c.dead_window_tokens = opts.integer("dead_window_tokens");
  c.resample_steps = parse_steps(opts, "resample_steps");
  if (const std::int64_t every = opts.integer("resample_every_steps"); every > 0) {
    for (std::int64_t s = every; s < c.total_steps(); s += every) c.resample_steps.push_back(s);
  }
  std::sort(c.resample_steps.begin(), c.resample_steps.end());
  c.resample_steps.erase(std::unique(c.resample_steps.begin(), c.resample_steps.end()),
                         c.resample_steps.end());
  for (std::int64_t s : c.resample_steps) {
    if (s >= c.total_steps()) {
      opts.fail("resample_steps", cat("step ", s, " is not before the last step (training has ",
                                      c.total_steps(), " steps = training_tokens / batch_size)"));
    }
  }
  c.resample_inputs = opts.integer("resample_inputs");
  c.resample_encoder_scale = opts.real("resample_encoder_scale");
  c.metrics_every_steps = opts.integer("metrics_every_steps");
  c.checkpoint_every_tokens = opts.integer("checkpoint_every_tokens");
  c.keep_checkpoints = opts.integer("keep_checkpoints");
  return c;
}

}  // namespace saelab
