// train: store (or a live stream from the source) -> Trainer -> SAELens directory in <run>/sae.
#include <optional>

#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
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
Options with_d_in(Options o, const char* key, std::int64_t d, const char* what) {
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
  Options o = with_d_in(*ref.options, "d_in", d_in, "activations");
  if (d_out) o = with_d_in(o, "d_out", *d_out, "target activations");
  return o;
}

nlohmann::json train_one(StageContext& ctx, const TrainPlan& plan) {
  const Options& o = ctx.options();
  protect_outputs(ctx, plan.run_dir);
  TrainerConfig tc = trainer_config_from(o.section("train"));
  if (!o.is_set("train.seed")) tc.seed = ctx.plugin_ctx.seed;  // the run's seed unless train.seed is given

  auto store = ctx.store();
  const fs::path input_dir = hook_store_dir(*store, ctx.store_dir(), plan.input_hook);
  StoreMeta meta = store->meta(input_dir);
  const ReaderOptions ro = reader_options(ctx, tc);
  auto reader = store->open_reader(input_dir, ro);
  std::unique_ptr<ActivationReader> target_reader;
  std::optional<StoreMeta> target_meta;
  fs::path target_dir;
  if (!plan.target_hook.empty()) {
    target_dir = hook_store_dir(*store, ctx.store_dir(), plan.target_hook);
    target_meta = store->meta(target_dir);
    target_reader = store->open_reader(target_dir, ro);
  }

  const Registry& reg = ctx.registry;
  TrainerInputs in;
  in.reader = reader.get();
  in.target_reader = target_reader.get();
  const PluginRef& sae_ref = o.plugin("train.sae");
  const FactoryInfo* sae_info = reg.find("sae", sae_ref.plugin);
  const bool wants_d_out = sae_info && sae_info->schema.find("d_out") != nullptr;
  if (wants_d_out && !target_meta)
    o.fail("train.target_hook",
           cat("is empty, but SAE '", sae_ref.plugin,
               "' predicts another hook: set train.target_hook (e.g. blocks.L.hook_mlp_out) and "
               "harvest it with the input in harvest.hooks"));
  in.sae = reg.create<SaeArchitecture>(
      sae_ref.plugin,
      sae_options(sae_ref, meta.d, target_meta ? std::optional<std::int64_t>(target_meta->d) : std::nullopt),
      ctx.plugin_ctx);
  nlohmann::json identity = {{"sae", plugin_identity(sae_ref, "sae", reg)},
                             {"losses", nlohmann::json::array()},
                             {"store", to_json(meta)}};
  if (target_meta) identity["target_store"] = to_json(*target_meta);
  for (const auto& ref : o.plugins("train.losses")) {
    in.losses.push_back(reg.create<Loss>(ref, ctx.plugin_ctx));
    identity["losses"].push_back(plugin_identity(ref, "loss", reg));
  }
  if (in.losses.empty())
    o.fail("train.losses", "needs at least one loss term (e.g. [{plugin: mse}, {plugin: l1}])");
  for (const auto& ref : o.plugins("train.callbacks"))
    in.callbacks.push_back(reg.create<TrainerCallback>(ref, ctx.plugin_ctx));
  in.run_dir = plan.run_dir;
  in.norm_stats = store->stats(input_dir);
  if (target_meta) in.target_norm_stats = store->stats(target_dir);
  in.identity = identity;
  in.sae_meta.model_name = meta.model_id;
  in.sae_meta.hook_name = meta.hook;
  in.sae_meta.hook_name_out = target_meta ? target_meta->hook : "";
  in.sae_meta.hook_layer = hook_layer(ctx, meta.hook);
  in.sae_meta.context_size = meta.context_size;
  in.sae_meta.prepend_bos = meta.prepend_bos;
  if (target_meta) in.sae_meta.apply_b_dec_to_input = false;

  Trainer trainer(tc, std::move(in));
  Progress progress("train", tc.total_steps() * tc.batch_size, "tok");
  trainer.on_progress([&](const StepMetrics& m) {
    std::map<std::string, double> shown;
    for (const char* k : {"loss", "mse", "l0", "dead_fraction"}) {
      auto it = m.values.find(k);
      if (it != m.values.end()) shown[k] = it->second;
    }
    progress.update(m.tokens, shown);
  });
  trainer.on_warning([](const std::string& w) { log::warn(w); });
  RunOptions ropts;
  ropts.resume = ctx.resume;
  ropts.force = ctx.request.force;
  TrainResult r = trainer.run(ropts);
  progress.finish();
  if (r.status == "interrupted")
    throw Interrupted(cat("training was interrupted at step ", r.steps, "; checkpoint ",
                          r.last_checkpoint.string(), " was written. Continue with --resume."));
  nlohmann::json out = {{"status", r.status},
                        {"steps", r.steps},
                        {"tokens", r.tokens},
                        {"input_scale", r.input_scale},
                        {"sae_dir", r.sae_dir.string()}};
  if (target_meta) out["output_scale"] = r.output_scale;
  return out;
}

}  // namespace

nlohmann::json run_train(StageContext& ctx) {
  const Options& o = ctx.options();
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
