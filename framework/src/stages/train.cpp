// train: store (or a live stream from the source) -> Trainer -> SAELens directory in <run>/sae.
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/train/trainer.hpp"
#include "stages/stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

// The options that decide the trained weights, for the trainer's resume check.
nlohmann::json plugin_identity(const PluginRef& ref, const std::string& kind, const Registry& reg) {
  const FactoryInfo* f = reg.find(kind, ref.plugin);
  return {{"plugin", ref.plugin}, {"options", f ? options_to_yaml(*ref.options, f->schema, reg) : ""}};
}

// SAE plugins take their input width from the data, not from the user.
Options with_d_in(const PluginRef& ref, std::int64_t d_in) {
  Options o = *ref.options;
  if (o.has("d_in")) {
    Options::Entry e = o.entries().at("d_in");
    if (!e.from_default && !e.is_auto && std::get<std::int64_t>(e.value) != d_in &&
        std::get<std::int64_t>(e.value) > 0)
      o.fail("d_in",
             cat("is ", std::get<std::int64_t>(e.value), " but the activations are ", d_in, "-dimensional"));
    e.value = d_in;
    e.is_auto = false;
    e.from_default = false;
    o.set("d_in", e);
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

void protect_outputs(const StageContext& ctx) {
  const fs::path run = ctx.run_dir;
  const bool exists =
      fs::exists(run / "checkpoints") || fs::exists(run / "sae") || fs::exists(run / "metrics.jsonl");
  if (!exists || ctx.resume) return;
  if (!ctx.overwrite)
    throw UsageError(cat("'", run.string(),
                         "' already holds training outputs (checkpoints/, sae/ or "
                         "metrics.jsonl); pass --resume to continue training or --overwrite to train again"));
  for (const char* p : {"checkpoints", "sae", "metrics.jsonl"}) fs::remove_all(run / p);
}

}  // namespace

nlohmann::json run_train(StageContext& ctx) {
  const Options& o = ctx.options();
  protect_outputs(ctx);
  TrainerConfig tc = trainer_config_from(o.section("train"));
  if (!o.is_set("train.seed")) tc.seed = ctx.plugin_ctx.seed;  // the run's seed unless train.seed is given

  auto store = ctx.store();
  const fs::path store_dir = ctx.store_dir();
  if (!fs::exists(store_dir / "manifest.json"))
    throw UsageError(cat("no activation store at '", store_dir.string(),
                         "'; run the harvest stage first "
                         "(saelab harvest FILE) or point harvest.store_dir at an existing store"));
  StoreMeta meta = store->meta(store_dir);
  ReaderOptions ro;
  ro.seed = ctx.plugin_ctx.seed;
  ro.batch_rows = tc.batch_size;
  ro.buffer_rows = o.integer("train.shuffle_buffer_rows");
  ro.device = ctx.plugin_ctx.device;
  auto reader = store->open_reader(store_dir, ro);

  const Registry& reg = ctx.registry;
  TrainerInputs in;
  in.reader = reader.get();
  const PluginRef& sae_ref = o.plugin("train.sae");
  in.sae = reg.create<SaeArchitecture>(sae_ref.plugin, with_d_in(sae_ref, meta.d), ctx.plugin_ctx);
  nlohmann::json identity = {{"sae", plugin_identity(sae_ref, "sae", reg)},
                             {"losses", nlohmann::json::array()},
                             {"store", to_json(meta)}};
  for (const auto& ref : o.plugins("train.losses")) {
    in.losses.push_back(reg.create<Loss>(ref, ctx.plugin_ctx));
    identity["losses"].push_back(plugin_identity(ref, "loss", reg));
  }
  if (in.losses.empty())
    o.fail("train.losses", "needs at least one loss term (e.g. [{plugin: mse}, {plugin: l1}])");
  for (const auto& ref : o.plugins("train.callbacks"))
    in.callbacks.push_back(reg.create<TrainerCallback>(ref, ctx.plugin_ctx));
  in.run_dir = ctx.run_dir;
  in.norm_stats = store->stats(store_dir);
  in.identity = identity;
  in.sae_meta.model_name = meta.model_id;
  in.sae_meta.hook_name = meta.hook;
  in.sae_meta.hook_layer = hook_layer(ctx, meta.hook);
  in.sae_meta.context_size = meta.context_size;
  in.sae_meta.prepend_bos = meta.prepend_bos;

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
  return {{"status", r.status},
          {"steps", r.steps},
          {"tokens", r.tokens},
          {"input_scale", r.input_scale},
          {"sae_dir", r.sae_dir.string()}};
}

}  // namespace saelab
