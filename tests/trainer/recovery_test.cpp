// Ground truth: SAEs trained on the synthetic source must find its planted dictionary.
//
// Data: the `synthetic` plugin (loaded through the plugin host), d_in 256, 1024 unit-norm true
// features, each active with probability 0.004 (≈ 4 per row), uniform magnitudes; rows come from
// run_with_hooks on random byte sequences, the true features from true_features.safetensors.
// Metric: for each true feature, the largest cosine with any decoder row; reported as the
// fraction ≥ 0.9 and the mean.
#include <cstdlib>

#include <gtest/gtest.h>

#include "saelab/plugin_host.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

struct Planted {
  torch::Tensor rows;      // [n, 256]
  torch::Tensor features;  // [1024, 256]
};

const Planted& planted() {
  static const Planted p = [] {
    Registry registry;
    load_plugin_library(registry, fs::path(SAELAB_PLUGIN_DIR) / "libsaelab_plugin_synthetic.so");
    PluginContext ctx;
    ctx.run_dir = test::fresh_dir("recovery_source");
    auto schema = registry.find("source", "synthetic")->schema;
    auto source = registry.create<ActivationSource>("synthetic", default_options(schema, "source"), ctx);
    torch::manual_seed(0);
    torch::Tensor tokens = torch::randint(0, 256, {1024, 128}, torch::kInt64);
    torch::Tensor rows = source->run_with_hooks(tokens, {"synthetic.hook"}).at("synthetic.hook");
    auto file = safetensors::load(ctx.run_dir / "true_features.safetensors");
    return Planted{rows.reshape({-1, 256}), file.tensors.at("features")};
  }();
  return p;
}

std::int64_t env_int(const char* name, std::int64_t def) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : def;
}
double env_real(const char* name, double def) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : def;
}

test::Recovery train_and_measure(const std::string& name, std::int64_t k, double l1) {
  test::RunSpec spec;
  spec.data = planted().rows;
  spec.d_sae = env_int("REC_DSAE", 1024);
  spec.k = k;
  spec.l1 = l1;
  spec.init_seed = 1;
  spec.cfg.batch_size = env_int("REC_BATCH", 1024);
  spec.cfg.training_tokens = spec.cfg.batch_size * env_int("REC_STEPS", 1500);
  spec.cfg.lr = env_real("REC_LR", 1e-3);
  spec.cfg.lr_warmup_steps = 50;
  spec.cfg.lr_decay_fraction = 0.2;
  spec.cfg.seed = 0;
  spec.cfg.dead_window_tokens = spec.cfg.batch_size * 100;
  spec.cfg.metrics_every_steps = 100;
  spec.cfg.checkpoint_every_tokens = 0;
  spec.run_dir = test::fresh_dir(name);
  test::RunOutcome out = test::train(spec);
  const double s = out.result.input_scale;
  test::Recovery r = test::recovery(planted().features, out.sae->W_dec.detach(), 0.9);
  std::printf("%s: recovered %.4f of 1024 true features (cosine >= 0.9), mean max cosine %.4f; "
              "final mse %.4f, l0 %.2f, dead %.3f, %.0f tokens/s, scale %.3f\n",
              name.c_str(), r.fraction_recovered, r.mean_max_cosine,
              out.result.last_metrics.values["mse"], out.result.last_metrics.values["l0"],
              out.result.last_metrics.values["dead_fraction"],
              out.result.last_metrics.values["tokens_per_s"], s);
  return r;
}

TEST(GroundTruthRecovery, ReluL1) {
  test::Recovery r = train_and_measure("recovery_relu_l1", 0, env_real("REC_L1", 0.05));
  EXPECT_GE(r.fraction_recovered, 0.90);
}

TEST(GroundTruthRecovery, TopK) {
  test::Recovery r = train_and_measure("recovery_topk", env_int("REC_K", 8), 0.0);
  EXPECT_GE(r.fraction_recovered, 0.95);
}

}  // namespace
}  // namespace saelab
