// train: store (or a live stream from the source) -> Trainer -> SAELens directory in <run>/sae.
#include <optional>

#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
#include "saelab/data/shared_reader.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/train/trainer.hpp"
#include "stages/hook_stores.hpp"
#include "stages/stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

// The options that decide the trained weights, for the trainer's resume check.
nlohmann::json plugin_identity(const PluginRef& ref, const std::string& kind, const Registry& reg) {
  const FactoryInfo* f = reg.find(kind, ref.plugin);
  return {{"plugin", ref.plugin}, {"options", f ? options_to_yaml(*ref.options, f->schema, reg) : ""}};
}

// SAE plugins take their widths (d_in; d_out for a transcoder) from the data, not from the user.
Options with_width(Options o, const char* key, std::int64_t d, const char* what) {
  if (o.has(key)) {
    Options::Entry e = o.entries().at(key);
    if (!e.from_default && !e.is_auto && std::get<std::int64_t>(e.value) != d &&
        std::get<std::int64_t>(e.value) > 0)
      o.fail(key, cat("is ", std::get<std::int64_t>(e.value), " but the ", what, " are ", d, "-dimensional"));
    e.value = d;
    e.is_auto = false;
    e.from_default = false;
    o.set(key, e);
  }
  return o;
}

// cfg.json's hook_layer: the block a TransformerLens name carries, else the layer the source gives
// its hook (a source's hooks need no TransformerLens shape, e.g. "synthetic.hook").
std::int64_t hook_layer(StageContext& ctx, const std::string& hook) {
  if (auto layer = hook_layer_from_name(hook)) return *layer;
  const SourceInfo& info = ctx.source()->info();
  auto it = info.hook_layers.find(hook);
  std::string known;
  for (const auto& [name, layer] : info.hook_layers) known += (known.empty() ? "" : ", ") + name;
  SAELAB_CHECK(it != info.hook_layers.end(), ConfigError, "train: the store's hook '", hook,
               "' names no layer (not blocks.<layer>.<hook>) and the source '", info.model_id,
               "' does not give one for it; its hooks: ", (known.empty() ? std::string("none") : known),
               ". Harvest with this experiment's source, or use a blocks.<layer>.<hook> name");
  return it->second;
}

void protect_outputs(const StageContext& ctx, const fs::path& run) {
  const bool exists =
      fs::exists(run / "checkpoints") || fs::exists(run / "sae") || fs::exists(run / "metrics.jsonl");
  if (!exists || ctx.resume) return;
  if (!ctx.overwrite)
    throw UsageError(cat("'", run.string(),
                         "' already holds training outputs (checkpoints/, sae/ or "
                         "metrics.jsonl); pass --resume to continue training or --overwrite to train again"));
  for (const char* p : {"checkpoints", "sae", "metrics.jsonl"}) fs::remove_all(run / p);
}

// Which store rows one training run reads, and where it writes.
struct TrainPlan {
  std::string input_hook;   // empty: the store's only hook
  std::string target_hook;  // transcoders; empty otherwise
  fs::path run_dir;
};

ReaderOptions reader_options(const StageContext& ctx, const TrainerConfig& tc) {
  ReaderOptions ro;
  ro.seed = ctx.plugin_ctx.seed;
  ro.batch_rows = tc.batch_size;
  ro.buffer_rows = ctx.options().integer("train.shuffle_buffer_rows");
  ro.device = ctx.plugin_ctx.device;
  return ro;
}

// The SAE's options with its widths set from the data: d_in always, d_out for a transcoder.
Options sae_options(const PluginRef& ref, std::int64_t d_in, std::optional<std::int64_t> d_out) {
  Options o = with_width(*ref.options, "d_in", d_in, "activations");
  if (d_out) o = with_width(o, "d_out", *d_out, "target activations");
  return o;
}

// One hook's store: where it is, what it holds, a reader over it.
struct OpenStore {
  fs::path dir;
  StoreMeta meta;
  std::unique_ptr<ActivationReader> reader;
};

OpenStore open_store(StageContext& ctx, const std::string& hook, const ReaderOptions& ro) {
  OpenStore s;
  s.dir = hook_store_dir(*ctx.store(), ctx.store_dir(), hook);
  s.meta = ctx.store()->meta(s.dir);
  s.reader = ctx.store()->open_reader(s.dir, ro);
  return s;
}

TrainerConfig trainer_config(const StageContext& ctx) {
  const Options& o = ctx.options();
  TrainerConfig tc = trainer_config_from(o.section("train"));
  if (!o.is_set("train.seed")) tc.seed = ctx.plugin_ctx.seed;  // the run's seed unless train.seed is given
  return tc;
}

// Everything one trainer needs but its readers: the SAE `sae_ref` names, the losses, callbacks,
// the identity its checkpoints are checked against and the cfg.json keys.
TrainerInputs trainer_inputs(StageContext& ctx, const PluginRef& sae_ref, const OpenStore& input,
                             const OpenStore* target, const fs::path& run_dir) {
  const Options& o = ctx.options();
  const Registry& reg = ctx.registry;
  TrainerInputs in;
  const FactoryInfo* sae_info = reg.find("sae", sae_ref.plugin);
  const bool wants_d_out = sae_info && sae_info->schema.find("d_out") != nullptr;
  if (wants_d_out && !target)
    o.fail("train.target_hook",
           cat("is empty, but SAE '", sae_ref.plugin,
               "' predicts another hook: set train.target_hook (e.g. blocks.L.hook_mlp_out) and "
               "harvest it with the input in harvest.hooks"));
  in.sae = reg.create<SaeArchitecture>(
      sae_ref.plugin,
      sae_options(sae_ref, input.meta.d, target ? std::optional<std::int64_t>(target->meta.d) : std::nullopt),
      ctx.plugin_ctx);
  nlohmann::json identity = {{"sae", plugin_identity(sae_ref, "sae", reg)},
                             {"losses", nlohmann::json::array()},
                             {"store", to_json(input.meta)}};
  if (target) identity["target_store"] = to_json(target->meta);
  for (const auto& ref : o.plugins("train.losses")) {
    in.losses.push_back(reg.create<Loss>(ref, ctx.plugin_ctx));
    identity["losses"].push_back(plugin_identity(ref, "loss", reg));
  }
  if (in.losses.empty())
    o.fail("train.losses", "needs at least one loss term (e.g. [{plugin: mse}, {plugin: l1}])");
  for (const auto& ref : o.plugins("train.callbacks"))
    in.callbacks.push_back(reg.create<TrainerCallback>(ref, ctx.plugin_ctx));
  in.run_dir = run_dir;
  in.norm_stats = ctx.store()->stats(input.dir);
  if (target) in.target_norm_stats = ctx.store()->stats(target->dir);
  in.identity = identity;
  in.sae_meta.model_name = input.meta.model_id;
  in.sae_meta.hook_name = input.meta.hook;
  in.sae_meta.hook_name_out = target ? target->meta.hook : "";
  in.sae_meta.hook_layer = hook_layer(ctx, input.meta.hook);
  in.sae_meta.context_size = input.meta.context_size;
  in.sae_meta.prepend_bos = input.meta.prepend_bos;
  if (target) in.sae_meta.apply_b_dec_to_input = false;
  in.parallel.group = ctx.plugin_ctx.group;
  in.parallel.check_every_steps = ctx.distributed.check_every_steps;
  in.parallel.bucket_bytes = ctx.distributed.bucket_bytes;
  in.parallel.overlap = ctx.distributed.overlap;
  return in;
}

RunOptions run_options(const StageContext& ctx) {
  RunOptions ropts;
  ropts.resume = ctx.resume;
  ropts.force = ctx.request.force;
  return ropts;
}

void show_progress(Trainer& trainer, Progress& progress) {
  trainer.on_progress([&progress](const StepMetrics& m) {
    std::map<std::string, double> shown;
    for (const char* k : {"loss", "mse", "l0", "dead_fraction"}) {
      auto it = m.values.find(k);
      if (it != m.values.end()) shown[k] = it->second;
    }
    progress.update(m.tokens, shown);
  });
}

nlohmann::json summary(const TrainResult& r) {
  if (r.status == "interrupted")
    throw Interrupted(cat("training was interrupted at step ", r.steps, "; checkpoint ",
                          r.last_checkpoint.string(), " was written. Continue with --resume."));
  nlohmann::json out = {{"status", r.status},
                        {"steps", r.steps},
                        {"tokens", r.tokens},
                        {"input_scale", r.input_scale},
                        {"sae_dir", r.sae_dir.string()}};
  if (r.output_scale != 1.0) out["output_scale"] = r.output_scale;
  return out;
}

nlohmann::json train_one(StageContext& ctx, const TrainPlan& plan) {
  protect_outputs(ctx, plan.run_dir);
  const TrainerConfig tc = trainer_config(ctx);
  const ReaderOptions ro = reader_options(ctx, tc);
  OpenStore input = open_store(ctx, plan.input_hook, ro);
  std::optional<OpenStore> target;
  if (!plan.target_hook.empty()) target = open_store(ctx, plan.target_hook, ro);
  TrainerInputs in = trainer_inputs(ctx, ctx.options().plugin("train.sae"), input,
                                    target ? &*target : nullptr, plan.run_dir);
  in.reader = input.reader.get();
  if (target) in.target_reader = target->reader.get();
  Trainer trainer(tc, std::move(in));
  trainer.on_warning([](const std::string& w) { log::warn(w); });
  Progress progress("train", tc.total_steps() * tc.batch_size, "tok");
  show_progress(trainer, progress);
  TrainResult r = trainer.run(run_options(ctx));
  progress.finish();
  return summary(r);
}

// train.saes: several SAE configurations on one hook, stepped in turn over one reader of the store,
// so every batch is read (and decoded) once for all of them. Each trains exactly as it would alone
// (the same batches in the same order) into saes/<index>-<plugin>/.
nlohmann::json train_group(StageContext& ctx) {
  const Options& o = ctx.options();
  const auto& refs = o.plugins("train.saes");
  if (!o.string("train.target_hook").empty())
    o.fail("train.saes", "is set together with train.target_hook; train transcoders one per run");
  const TrainerConfig tc = trainer_config(ctx);
  OpenStore input = open_store(ctx, o.string("train.input_hook"), reader_options(ctx, tc));
  SharedReader shared(*input.reader, static_cast<int>(refs.size()));
  std::vector<std::unique_ptr<Trainer>> trainers;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    names.push_back(cat(i, "-", refs[i].plugin));
    const fs::path run_dir = ctx.run_dir / "saes" / names.back();
    protect_outputs(ctx, run_dir);
    TrainerInputs in = trainer_inputs(ctx, refs[i], input, nullptr, run_dir);
    in.reader = &shared.consumer(static_cast<int>(i));
    trainers.push_back(std::make_unique<Trainer>(tc, std::move(in)));
    trainers.back()->on_warning([](const std::string& w) { log::warn(w); });
  }
  Progress progress("train", tc.total_steps() * tc.batch_size, "tok");
  show_progress(*trainers.front(), progress);
  std::vector<std::int64_t> first_steps;
  for (auto& t : trainers) first_steps.push_back(t->start(run_options(ctx)));
  for (std::size_t i = 1; i < trainers.size(); ++i)
    SAELAB_CHECK(
        first_steps[i] == first_steps[0], Error, "train.saes: saes/", names[i], " starts at step ",
        first_steps[i], " but saes/", names[0], " at step ", first_steps[0],
        "; SAEs sharing one read of the store resume together. Remove the checkpoints that are ahead "
        "(or train the others to the same step alone) and resume again");
  std::vector<bool> going(trainers.size(), true);
  for (bool any = true; any;) {
    any = false;
    for (std::size_t i = 0; i < trainers.size(); ++i)
      if (going[i]) any = (going[i] = trainers[i]->advance()) || any;
  }
  nlohmann::json runs = nlohmann::json::object();
  std::vector<TrainResult> results(trainers.size());
  for (std::size_t i = trainers.size(); i-- > 0;) results[i] = trainers[i]->finish();
  progress.finish();
  for (std::size_t i = 0; i < trainers.size(); ++i) runs[names[i]] = summary(results[i]);
  log::info("train: ", trainers.size(), " SAEs from ", shared.source_batches(), " batches read once");
  return {{"saes", runs}, {"batches_read", shared.source_batches()}};
}

}  // namespace

nlohmann::json run_train(StageContext& ctx) {
  const Options& o = ctx.options();
  if (!o.plugins("train.saes").empty()) {
    if (!o.strings("train.hooks").empty())
      o.fail("train.saes",
             "is set together with train.hooks; train several SAEs on one hook or one SAE per hook");
    return train_group(ctx);
  }
  const std::string target = o.string("train.target_hook");
  if (o.strings("train.hooks").empty())
    return train_one(ctx, {o.string("train.input_hook"), target, ctx.run_dir});
  if (o.is_set("train.input_hook"))
    o.fail("train.input_hook",
           "is set together with train.hooks; list every hook to train on in train.hooks");
  if (!target.empty())
    o.fail("train.target_hook",
           "is set together with train.hooks: one transcoder is trained per run; use "
           "train.input_hook for its input");
  const auto hooks =
      match_hooks(o.strings("train.hooks"), stored_hooks(*ctx.store(), ctx.store_dir()), o, "train.hooks");
  // One SAE per hook, each in the layout of a SAELens multi-SAE release: saes/<hook>/sae/.
  nlohmann::json runs = nlohmann::json::object();
  for (const auto& hook : hooks) {
    log::info("train: SAE ", runs.size() + 1, " of ", hooks.size(), ", hook ", hook);
    runs[hook] = train_one(ctx, {hook, "", ctx.run_dir / "saes" / hook});
  }
  return {{"saes", runs}};
}

}  // namespace saelab
