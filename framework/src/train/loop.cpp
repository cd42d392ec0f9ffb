// The training loop: one optimizer step, resampling, metrics, stopping.
#include <atomic>
#include <cmath>
#include <csignal>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/train/resample.hpp"
#include "train/trainer_impl.hpp"

namespace saelab {
namespace fs = std::filesystem;
using nlohmann::json;

// ---- stop flag and signal handlers ----------------------------------------------------------

namespace {
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag is set from a signal handler");

extern "C" void saelab_on_stop_signal(int sig) {
  // A second signal while the checkpoint is being written kills the process as usual.
  if (g_stop.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

class SignalGuard {
 public:
  explicit SignalGuard(bool active) : active_(active) {
    if (!active_) return;
    struct sigaction sa {};
    sa.sa_handler = saelab_on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalGuard() {
    if (!active_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  bool active_;
  struct sigaction old_int_ {
  }, old_term_{};
};

}  // namespace

void request_stop() {
  g_stop.store(true);
}
bool stop_requested() {
  return g_stop.load();
}
void clear_stop_request() {
  g_stop.store(false);
}

// ---- construction -----------------------------------------------------------------------------

Trainer::Impl::Impl(TrainerConfig c, TrainerInputs i) : cfg(std::move(c)), in(std::move(i)) {
  cfg.validate();
  SAELAB_CHECK(in.reader != nullptr, Error, "Trainer: no activation reader given");
  SAELAB_CHECK(in.sae != nullptr, Error, "Trainer: no SAE given");
  SAELAB_CHECK(!in.losses.empty(), ConfigError,
               "train.losses is empty: at least one loss term (e.g. mse) is needed");
  SAELAB_CHECK(!in.run_dir.empty(), Error, "Trainer: no run directory given");
  const SaeShape shape = in.sae->shape();
  SAELAB_CHECK(in.reader->d() == shape.d_in, ConfigError, "the activations have width ", in.reader->d(),
               " but the SAE's d_in is ", shape.d_in, "; set the SAE's d_in to the hook's width");
  if (in.target_reader) {
    SAELAB_CHECK(in.target_reader->d() == shape.out(), ConfigError, "the target activations have width ",
                 in.target_reader->d(), " but the SAE's output width d_out is ", shape.out(),
                 "; set the transcoder's d_out to the target hook's width");
    SAELAB_CHECK(cfg.resample_steps.empty(), ConfigError,
                 "train.resample_steps is set, but a run with a target hook (a transcoder) cannot resample "
                 "dead latents; remove train.resample_steps");
  } else {
    SAELAB_CHECK(shape.d_out == 0, ConfigError, "SAE '", in.sae->architecture(),
                 "' predicts an output of width ", shape.d_out, " from its ", shape.d_in,
                 "-wide input: it is a transcoder and needs a target hook (train.target_hook)");
  }
  params = in.sae->parameters(/*recurse=*/true);
  SAELAB_CHECK(!params.empty(), Error, "SAE '", in.sae->architecture(), "' has no parameters");
  device = params.front().device();
  std::map<std::string, torch::Tensor> named;
  for (const auto& p : in.sae->named_parameters(/*recurse=*/true)) named[p.key()] = p.value();
  adam = std::make_unique<Adam>(named, AdamConfig{cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps});
  dead = std::make_unique<DeadLatentTracker>(shape.d_sae, cfg.dead_window_tokens);
  const std::int64_t window_steps = (cfg.dead_window_tokens + cfg.batch_size - 1) / cfg.batch_size;
  density =
      std::make_unique<FeatureDensity>(shape.d_sae, std::max<std::int64_t>(0, total_steps() - window_steps));
  gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed);
  schedule = LrSchedule{cfg.lr, cfg.lr_warmup_steps, cfg.lr_decay_fraction, cfg.lr_floor, total_steps()};
  resample_at.insert(cfg.resample_steps.begin(), cfg.resample_steps.end());
  warn = [](const std::string& msg) { log::warn(msg); };
  setup_parallel();
}

json Trainer::Impl::identity() const {
  const SaeShape shape = in.sae->shape();
  json losses = json::array();
  for (const auto& l : in.losses) losses.push_back(l->name());
  return json{{"train", cfg.identity_json()},
              {"sae",
               {{"architecture", in.sae->architecture()},
                {"d_in", shape.d_in},
                {"d_sae", shape.d_sae},
                {"config", in.sae->extra_config()}}},
              {"losses", losses},
              {"inputs", in.identity}};
}

std::string Trainer::Impl::config_hash() const {
  return sha256_hex(identity().dump());
}

// ---- one step ---------------------------------------------------------------------------------

namespace {
torch::Tensor checked_batch(torch::Tensor batch, std::int64_t rows, std::int64_t d, const char* what,
                            const char* width) {
  SAELAB_CHECK(batch.dim() == 2 && batch.size(0) == rows && batch.size(1) == d, Error, "the ", what,
               " reader returned a batch of shape ", batch.sizes(), ", expected [", rows, ", ", d,
               "] (train.batch_size × ", width, "); open the reader with batch_rows = train.batch_size");
  return batch;
}

// The input and target rows of a transcoder must be the same tokens.
void check_aligned(const ActivationRows& in, const ActivationRows& out, std::int64_t step) {
  if (in.sequence.equal(out.sequence) && in.position.equal(out.position)) return;
  const auto bad = (in.sequence.ne(out.sequence) | in.position.ne(out.position)).nonzero().flatten();
  const std::int64_t i = bad[0].item<std::int64_t>();
  throw Error(cat("training step ", step + 1, ": the input and target stores are not aligned: row ", i,
                  " of the batch is sequence ", in.sequence[i].item<std::int64_t>(), " position ",
                  in.position[i].item<std::int64_t>(), " in the input store but sequence ",
                  out.sequence[i].item<std::int64_t>(), " position ", out.position[i].item<std::int64_t>(),
                  " in the target store. Train a transcoder on two hooks of one harvest (harvest.hooks)"));
}
}  // namespace

torch::Tensor Trainer::Impl::scaled(const torch::Tensor& batch, double scale) const {
  torch::Tensor t = batch.to(device, torch::kFloat32);
  return scale == 1.0 ? t : t * scale;
}

Trainer::Impl::Batch Trainer::Impl::next_batch(std::int64_t part, std::int64_t parts) {
  const SaeShape shape = in.sae->shape();
  const std::int64_t rows = cfg.batch_size / parts;
  Batch b;
  if (!in.target_reader) {
    b.x = checked_batch(in.reader->next_part(part, parts, false).activations, rows, shape.d_in, "activation",
                        "d_in");
  } else {
    ActivationRows x = in.reader->next_part(part, parts, true),
                   y = in.target_reader->next_part(part, parts, true);
    check_aligned(x, y, step);
    b.x = checked_batch(x.activations, rows, shape.d_in, "input", "d_in");
    b.target = scaled(checked_batch(y.activations, rows, shape.out(), "target", "d_out"), output_scale);
  }
  b.x = scaled(b.x, input_scale);
  return b;
}

void Trainer::Impl::maybe_resample() {
  if (resample_at.count(step) == 0) return;
  const std::int64_t dead_before = dead->dead_count();
  ResampleResult r = resample_dead_latents(
      *in.sae, *adam, dead->dead_mask(), [this] { return next_input(); }, cfg.resample_inputs,
      cfg.resample_encoder_scale, gen);
  if (r.resampled > 0) dead->revive(r.latents);
  log::info("step ", step, ": resampled ", r.resampled, " of ", dead_before, " dead latents");
  append_metrics_event(json{{"event", "resample"},
                            {"step", step},
                            {"tokens", tokens},
                            {"dead_before", dead_before},
                            {"resampled", r.resampled},
                            {"inputs_scored", r.inputs_scored},
                            {"mean_alive_encoder_norm", r.mean_alive_encoder_norm}});
}

void Trainer::Impl::log_metrics(StepMetrics& m) {
  const auto now = std::chrono::steady_clock::now();
  const double interval = std::chrono::duration<double>(now - last_log).count();
  const double elapsed = std::chrono::duration<double>(now - started).count();
  const double tps = interval > 0 ? double(tokens - tokens_at_last_log) / interval : 0.0;
  m.values["tokens_per_s"] = tps;
  m.values["elapsed_s"] = elapsed;
  m.values["eta_s"] = tps > 0 ? double(total_steps() - step) * double(cfg.batch_size) / tps : 0.0;
  last_log = now;
  tokens_at_last_log = tokens;
  append_metrics(m);
  last_metrics = m;
  if (progress) progress(m);
  for (const auto& cb : in.callbacks) cb->on_metrics(m, *in.sae);
}

// ---- the run ------------------------------------------------------------------------------------

Trainer::Trainer(TrainerConfig config, TrainerInputs inputs)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(inputs))) {}
Trainer::~Trainer() = default;

void Trainer::on_progress(std::function<void(const StepMetrics&)> fn) {
  impl_->progress = std::move(fn);
}
void Trainer::on_warning(std::function<void(const std::string&)> fn) {
  impl_->warn = std::move(fn);
}
std::string Trainer::config_hash() const {
  return impl_->config_hash();
}

TrainResult Trainer::run(const RunOptions& opts) {
  start(opts);
  while (advance()) {
  }
  return finish();
}

std::int64_t Trainer::start(const RunOptions& opts) {
  Impl& s = *impl_;
  SAELAB_CHECK(!s.running, Error, "Trainer::start: this run has already started");
  s.opts = opts;
  if (opts.save_sae) s.check_saveable();
  fs::create_directories(s.in.run_dir);
  s.result = TrainResult{};
  if (opts.resume && s.resume(opts.force)) {
    s.result.resumed_from_step = s.step;
  } else {
    SAELAB_CHECK(opts.resume || list_train_checkpoints(s.checkpoints_dir()).empty(), Error, "run directory ",
                 s.in.run_dir.string(),
                 " already holds checkpoints of a "
                 "training run; resume it (--resume) or choose a new run directory");
    if (opts.resume)
      s.warn(cat("no usable checkpoint in ", s.checkpoints_dir().string(), "; starting from step 0"));
    s.init_fresh();
  }
  s.check_ranks_agree(s.result.resumed_from_step ? cat("after resuming from step ", s.step)
                                                 : std::string("at the start"));
  clear_stop_request();
  s.signals = std::make_shared<SignalGuard>(opts.handle_signals);
  s.started = s.last_log = std::chrono::steady_clock::now();
  s.tokens_at_last_log = s.tokens;
  s.result.status = "completed";
  s.running = true;
  return s.step;
}

bool Trainer::advance() {
  Impl& s = *impl_;
  SAELAB_CHECK(s.running, Error, "Trainer::advance: call start() first (or the run has finished)");
  try {
    return s.advance_step();
  } catch (const dist::DistributedError& e) {
    s.running = false;
    const auto found = load_newest_train_checkpoint(s.checkpoints_dir(), [](const std::string&) {});
    throw dist::DistributedError(
        cat(e.what(), ". ",
            found ? cat("The last committed checkpoint is ", found->dir.string(), " (step ",
                        found->checkpoint.step, "); relaunch every rank with --resume to continue from it")
                  : std::string("No checkpoint was committed yet; relaunch to start again")));
  }
}

bool Trainer::Impl::advance_step() {
  const std::int64_t total = total_steps(), every = cfg.checkpoint_every_tokens;
  if (step >= total || result.status != "completed") return false;
  const bool log = (step + 1) % cfg.metrics_every_steps == 0 || step + 1 == total;
  StepMetrics m;
  train_step(log, m);
  maybe_resample();
  bool callback_stop = false;
  if (log) {
    log_metrics(m);
    for (const auto& cb : in.callbacks) callback_stop = cb->should_stop(m) || callback_stop;
  }
  const std::int64_t check = in.parallel.check_every_steps;
  if (group && check > 0 && step % check == 0) check_ranks_agree(cat("after step ", step));
  if (group ? stop_voted : stop_requested())
    result.status = "interrupted";
  else if (callback_stop)
    result.status = "stopped";
  const bool due = every > 0 && tokens / every != (tokens - cfg.batch_size) / every;
  if (due || result.status != "completed") save_checkpoint();
  return result.status == "completed" && step < total;
}

TrainResult Trainer::finish() {
  Impl& s = *impl_;
  SAELAB_CHECK(s.running, Error, "Trainer::finish: call start() first (or the run has finished)");
  s.running = false;
  TrainResult& result = s.result;
  if (result.status == "completed" && s.cfg.checkpoint_every_tokens > 0 && s.last_checkpoint_step != s.step) {
    s.save_checkpoint();
  }
  if (result.status != "interrupted" && s.opts.save_sae) result.sae_dir = s.save_final_sae();
  // The other ranks return once rank 0 has written what the run ends with.
  if (s.group) s.group->barrier("the end of training");
  s.signals.reset();
  result.steps = s.step;
  result.tokens = s.tokens;
  result.input_scale = s.input_scale;
  result.output_scale = s.output_scale;
  result.last_checkpoint = s.last_checkpoint;
  result.last_metrics = s.last_metrics;
  if (s.reducer) result.all_reduce = s.reducer->stats();
  return result;
}

}  // namespace saelab
