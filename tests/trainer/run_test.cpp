// A whole training run: metrics, the saved SAE (with the input scale folded in), errors.
#include <fstream>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/data/memory_reader.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/train/checkpoint.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// Copies the SAE's weights at the last metrics step, before the trainer folds the input scale in.
class Snapshot : public TrainerCallback {
 public:
  void on_metrics(const StepMetrics& m, SaeArchitecture& sae) override {
    weights.clear();
    for (const auto& [k, v] : sae.state()) weights[k] = v.detach().clone();
  }
  TensorMap weights;
};

TEST(TrainerRun, WritesMetricsCheckpointsAndAFoldedSae) {
  test::RunSpec spec = test::small_run("run_basic");
  auto snap = std::make_shared<Snapshot>();
  spec.callbacks.push_back(snap);
  test::RunOutcome out = test::train(spec);
  EXPECT_EQ(out.result.status, "completed");
  EXPECT_EQ(out.result.steps, 60);
  EXPECT_EQ(out.result.tokens, 60 * 64);

  // metrics.jsonl: 12 metric lines (every 5 steps) and 2 resampling events.
  auto lines = read_jsonl(spec.run_dir / "metrics.jsonl");
  int metrics = 0, events = 0;
  for (const auto& j : lines) {
    if (j.contains("event")) {
      ++events;
      EXPECT_EQ(j["event"], "resample");
      continue;
    }
    ++metrics;
    for (const char* key : {"step", "tokens", "loss", "loss.mse", "loss.l1", "mse", "l0", "dead_fraction",
                            "lr", "tokens_per_s", "explained_variance", "grad_norm"}) {
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
    }
    EXPECT_NEAR(j["loss"].get<double>(), j["loss.mse"].get<double>() + j["loss.l1"].get<double>(), 1e-3);
    EXPECT_NEAR(j["mse"].get<double>(), j["loss.mse"].get<double>(), 1e-3);
  }
  EXPECT_EQ(metrics, 12);
  EXPECT_EQ(events, 2);
  EXPECT_LT(lines.back()["mse"].get<double>(), lines.front()["mse"].get<double>());

  // Checkpoints every 10 steps, the newest 3 kept.
  auto ckpts = list_train_checkpoints(spec.run_dir / "checkpoints");
  ASSERT_EQ(ckpts.size(), 3u);
  EXPECT_EQ(ckpts.front().filename(), "step-000000000060");
  EXPECT_EQ(ckpts.back().filename(), "step-000000000040");

  // The saved SAE takes raw activations: SAE_saved(x) == SAE_trained(x · s) / s.
  SaeDirectory saved = load_sae_directory(spec.run_dir / "sae");
  EXPECT_EQ(saved.cfg["architecture"], "standard");
  EXPECT_EQ(saved.cfg["normalize_activations"], "none");
  ASSERT_TRUE(saved.log10_density.has_value());
  EXPECT_EQ(saved.log10_density->size(0), 96);
  const double s = out.result.input_scale;
  EXPECT_GT(s, 0.0);
  auto trained = std::make_shared<test::TinySae>(32, 96, 0, 1);
  auto folded = std::make_shared<test::TinySae>(32, 96, 0, 1);
  trained->load_state(snap->weights);
  folded->load_state(saved.weights);
  torch::NoGradGuard g;
  torch::Tensor x = spec.data.narrow(0, 0, 256);
  torch::Tensor a = folded->forward(x).reconstruction;
  torch::Tensor b = trained->forward(x * s).reconstruction / s;
  const double max_diff = (a - b).abs().max().item<double>();
  std::printf("folded vs unfolded reconstruction: max |diff| = %.3g (scale %.4f)\n", max_diff, s);
  EXPECT_LT(max_diff, 1e-4);
}

TEST(TrainerRun, InputScaleFromStoreStatisticsOrEstimated) {
  test::RunSpec spec = test::small_run("run_scale");
  spec.cfg.training_tokens = 64 * 2;
  spec.cfg.resample_steps.clear();
  spec.cfg.init_sample_batches = 32;  // the whole data set: the estimate is the exact mean norm
  const double mean_norm = spec.data.norm(2, {1}).mean().item<double>();
  test::RunOutcome est = test::train(spec);
  EXPECT_NEAR(est.result.input_scale, std::sqrt(32.0) / mean_norm, 1e-4);

  ReaderOptions ro;
  ro.batch_rows = 64;
  ro.seed = spec.cfg.seed;
  TensorActivationReader reader(spec.data, ro);
  TrainerInputs in;
  in.reader = &reader;
  in.sae = std::make_shared<test::TinySae>(32, 96, 0, 1);
  in.losses = {std::make_shared<test::MseLoss>()};
  in.run_dir = test::scratch_dir("run_scale_stats");
  in.norm_stats = NormStats{1000, 2.5, {}};
  in.sae_meta.hook_name = "synthetic.hook";
  in.sae_meta.context_size = 128;
  TrainResult r = Trainer(spec.cfg, in).run();
  EXPECT_DOUBLE_EQ(r.input_scale, std::sqrt(32.0) / 2.5);
}

TEST(TrainerRun, ErrorsNameWhatIsWrong) {
  test::RunSpec spec = test::small_run("run_errors");
  ReaderOptions ro;
  ro.batch_rows = 32;  // not the configured batch size
  TensorActivationReader reader(spec.data, ro);
  TrainerInputs in;
  in.reader = &reader;
  in.sae = std::make_shared<test::TinySae>(32, 96, 0, 1);
  in.losses = {std::make_shared<test::MseLoss>()};
  in.run_dir = spec.run_dir;
  // The SAE could not be saved (cfg.json needs context_size > 0): refused before any training.
  try {
    Trainer(spec.cfg, in).run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context_size"), std::string::npos) << e.what();
    EXPECT_FALSE(fs::exists(spec.run_dir / "metrics.jsonl"));
  }
  in.sae_meta.hook_name = "synthetic.hook";
  in.sae_meta.context_size = 128;
  try {
    Trainer(spec.cfg, in).run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[32, 32]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[64, 32]"), std::string::npos) << e.what();
  }
  in.sae = std::make_shared<test::TinySae>(16, 96, 0, 1);
  try {
    Trainer(spec.cfg, in);  // NOLINT(bugprone-unused-raii): constructing it must throw
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("width 32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("d_in is 16"), std::string::npos) << e.what();
  }
  in.sae = std::make_shared<test::TinySae>(32, 96, 0, 1);
  in.losses.clear();
  EXPECT_THROW(Trainer(spec.cfg, in), ConfigError);
}

TEST(TrainerRun, NonFiniteLossStopsWithTheStepAndKeepsTheLastCheckpoint) {
  test::RunSpec spec = test::small_run("run_nan");
  spec.extra_losses.push_back(std::make_shared<test::PoisonLoss>(33));  // the 34th step
  try {
    test::train(spec);
    FAIL() << "NaN loss accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("NaN message: %s\n", msg.c_str());
    EXPECT_NE(msg.find("step 34 of 60"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("poison = nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step-000000000030"), std::string::npos) << msg;
  }
  auto ckpts = list_train_checkpoints(spec.run_dir / "checkpoints");
  ASSERT_FALSE(ckpts.empty());
  EXPECT_EQ(ckpts.front().filename(), "step-000000000030");
  TrainCheckpoint c = load_train_checkpoint(ckpts.front());  // intact: verifies every file
  EXPECT_EQ(c.step, 30);
  for (const auto& [name, t] : c.tensors) {
    if (t.is_floating_point()) {
      EXPECT_TRUE(t.isfinite().all().item<bool>()) << name;
    }
  }
  EXPECT_FALSE(fs::exists(spec.run_dir / "sae"));
}

TEST(TrainerRun, RefusesToOverwriteARunWithoutResume) {
  test::RunSpec spec = test::small_run("run_overwrite");
  spec.cfg.training_tokens = 64 * 10;
  spec.cfg.resample_steps.clear();
  test::train(spec);
  try {
    test::train(spec);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds checkpoints"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run_overwrite"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace saelab
