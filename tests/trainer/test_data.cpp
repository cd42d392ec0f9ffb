#include "test_data.hpp"

#include <optional>

#include <unistd.h>

#include "saelab/core/error.hpp"
#include "saelab/data/memory_reader.hpp"
#include "saelab/core/plugin_host.hpp"

namespace saelab::test {
namespace fs = std::filesystem;

torch::Tensor planted_rows(const synthetic::Dictionary& dict, std::int64_t n) {
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) keys[std::size_t(i)] = synthetic::mix64(std::uint64_t(i));
  return dict.rows(keys);
}

Registry& plugins() {
  static Registry* registry = [] {
    auto* r = new Registry();  // never destroyed: plugin objects may outlive static destruction order
    for (const char* lib : {"synthetic", "sae_relu_l1", "sae_topk", "sae_batchtopk", "sae_jumprelu",
                            "sae_gated", "sae_transcoder", "losses"}) {
      load_plugin_library(*r, fs::path(SAELAB_PLUGIN_DIR) / cat("libsaelab_plugin_", lib, ".so"));
    }
    return r;
  }();
  return *registry;
}

Options plugin_options(const std::string& kind, const std::string& name, const Values& values) {
  const FactoryInfo* f = plugins().find(kind, name);
  if (!f) throw Error(cat("test: no ", kind, " plugin '", name, "' loaded"));
  Options o = default_options(f->schema, kind);
  for (const auto& [key, value] : values) o.set_given(key, value, SourceLoc{"test.yaml", 1, 1});
  return o;
}

RunOutcome train(const RunSpec& spec, const RunOptions& opts) {
  return train_with_setup(spec, opts, {});
}

RunOutcome train_with_setup(const RunSpec& spec, const RunOptions& opts,
                            const std::function<void(SaeArchitecture&)>& setup) {
  RunOutcome out;
  ReaderOptions ro;
  ro.seed = spec.cfg.seed;
  ro.batch_rows = spec.cfg.batch_size;
  TensorActivationReader reader(spec.data, ro);
  std::optional<TensorActivationReader> target_reader;
  if (spec.target.defined()) target_reader.emplace(spec.target, ro);
  if (spec.make_sae) {
    out.sae = spec.make_sae();
  } else {
    out.sae = std::make_shared<TinySae>(spec.data.size(1), spec.d_sae, spec.k, spec.init_seed);
  }
  if (setup) setup(*out.sae);
  TrainerInputs in;
  in.reader = &reader;
  if (target_reader) in.target_reader = &*target_reader;
  in.sae = out.sae;
  if (spec.make_losses) {
    in.losses = spec.make_losses();
  } else {
    in.losses.push_back(std::make_shared<MseLoss>());
    if (spec.l1 > 0) in.losses.push_back(std::make_shared<L1Loss>(spec.l1, 0.05));
  }
  for (const auto& l : spec.extra_losses) in.losses.push_back(l);
  in.callbacks = spec.callbacks;
  in.run_dir = spec.run_dir;
  in.identity = {{"sae", {{"k", spec.k}, {"d_sae", spec.d_sae}, {"l1", spec.l1}}}};
  in.sae_meta.model_name = "synthetic";
  in.sae_meta.hook_name = "synthetic.hook";
  in.sae_meta.context_size = 128;
  if (target_reader) {
    in.sae_meta.hook_name_out = "synthetic.target";
    in.sae_meta.apply_b_dec_to_input = false;
  }
  Trainer trainer(spec.cfg, in);
  trainer.on_warning([&](const std::string& w) { out.warnings.push_back(w); });
  out.result = trainer.run(opts);
  return out;
}

void use_plugins(RunSpec& spec, const std::string& sae, const Values& sae_options, const LossList& losses,
                 std::uint64_t seed) {
  spec.make_sae = [=] {
    PluginContext ctx;
    ctx.seed = seed;
    return plugins().create<SaeArchitecture>(sae, plugin_options("sae", sae, sae_options), ctx);
  };
  spec.make_losses = [=] {
    std::vector<std::shared_ptr<Loss>> out;
    for (const auto& [name, values] : losses)
      out.push_back(plugins().create<Loss>(name, plugin_options("loss", name, values), {}));
    return out;
  };
}

RunSpec small_run(const std::string& name) {
  return small_run_in(scratch_dir(name));
}

RunSpec small_run_in(const fs::path& run_dir) {
  static const torch::Tensor data =
      planted_rows(synthetic::Dictionary({32, 64, 0.05, "uniform", 1.0, 3}), 2048);
  RunSpec s;
  s.data = data;
  s.d_sae = 96;
  s.l1 = 0.1;
  s.cfg.batch_size = 64;
  s.cfg.training_tokens = 64 * 60;
  s.cfg.seed = 9;
  s.cfg.lr = 1e-3;
  s.cfg.lr_warmup_steps = 5;
  s.cfg.lr_decay_fraction = 0.2;
  s.cfg.init_sample_batches = 2;
  s.cfg.dead_window_tokens = 64 * 8;
  s.cfg.resample_steps = {20, 40};
  s.cfg.resample_inputs = 256;
  s.cfg.metrics_every_steps = 5;
  s.cfg.checkpoint_every_tokens = 64 * 10;
  s.cfg.keep_checkpoints = 3;
  s.run_dir = run_dir;
  return s;
}

Recovery recovery(const torch::Tensor& features, const torch::Tensor& decoder, double threshold) {
  torch::NoGradGuard g;
  torch::Tensor f = features / features.norm(2, {1}, true);
  torch::Tensor d = decoder / decoder.norm(2, {1}, true).clamp_min(1e-12);
  torch::Tensor best = std::get<0>(f.matmul(d.t()).max(1));  // [n_features]
  return Recovery{best.ge(threshold).to(torch::kFloat64).mean().item<double>(),
                  best.to(torch::kFloat64).mean().item<double>()};
}

}  // namespace saelab::test
