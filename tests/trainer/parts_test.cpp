// The trainer's parts against hand-computed values: schedule, Adam, clipping, latent statistics,
// the in-memory reader's cursor, and the config schema.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include "saelab/core/error.hpp"
#include "saelab/data/memory_reader.hpp"
#include "saelab/train/trainer.hpp"
#include "saelab/train/adam.hpp"
#include "saelab/train/latent_stats.hpp"
#include "saelab/train/schedule.hpp"

namespace saelab {
namespace {

TEST(LrSchedule, WarmupConstantDecayToFloor) {
  // 20 steps, warm-up 4, decay over the last 25% (5 steps) to 10% of lr.
  LrSchedule s{1.0, 4, 0.25, 0.1, 20};
  EXPECT_EQ(s.decay_steps(), 5);
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(1), 0.50);
  EXPECT_DOUBLE_EQ(s.at(3), 1.00);
  EXPECT_DOUBLE_EQ(s.at(10), 1.00);
  EXPECT_DOUBLE_EQ(s.at(15), 1.00);               // first decay step: 0.1 + 0.9 · 5/5
  EXPECT_DOUBLE_EQ(s.at(16), 0.1 + 0.9 * 4 / 5);  // 0.82
  EXPECT_DOUBLE_EQ(s.at(19), 0.1 + 0.9 * 1 / 5);  // 0.28, last step
  EXPECT_DOUBLE_EQ(s.at(20), 0.1);                // one past the end: the floor
}

TEST(LrSchedule, OverlappingWarmupAndDecayTakeTheSmaller) {
  LrSchedule s{2.0, 4, 0.5, 0.0, 4};  // decay over steps 2, 3
  EXPECT_DOUBLE_EQ(s.at(0), 0.5);
  EXPECT_DOUBLE_EQ(s.at(2), 2.0 * std::min(3.0 / 4, 2.0 / 2));  // warm-up wins: 1.5
  EXPECT_DOUBLE_EQ(s.at(3), 2.0 * std::min(1.0, 1.0 / 2));      // decay wins: 1.0
  LrSchedule constant{0.5, 0, 0.0, 0.0, 10};
  EXPECT_DOUBLE_EQ(constant.at(0), 0.5);
  EXPECT_DOUBLE_EQ(constant.at(9), 0.5);
}

// Adam written out in scalar double arithmetic, independently of the tensor implementation.
struct ScalarAdam {
  double b1, b2, eps, m = 0, v = 0;
  int t = 0;
  double step(double p, double g, double lr) {
    ++t;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double m_hat = m / (1 - std::pow(b1, t));
    const double v_hat = v / (1 - std::pow(b2, t));
    return p - lr * m_hat / (std::sqrt(v_hat) + eps);
  }
};

TEST(Adam, MatchesHandComputedSteps) {
  torch::Tensor p = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  Adam adam({{"p", p}}, AdamConfig{0.9, 0.999, 1e-8});
  std::vector<ScalarAdam> ref(3, ScalarAdam{0.9, 0.999, 1e-8});
  std::vector<double> expect = {1.0, -2.0, 0.5};
  const std::vector<std::vector<double>> grads = {{0.5, -1.0, 0.0}, {-1.0, 2.0, 3.0}, {0.25, 0.0, -4.0}};
  const std::vector<double> lrs = {0.1, 0.05, 0.2};
  double max_diff = 0;
  for (std::size_t s = 0; s < grads.size(); ++s) {
    p.mutable_grad() = torch::tensor(grads[s], torch::kFloat64);
    adam.step(lrs[s]);
    for (int i = 0; i < 3; ++i) {
      expect[std::size_t(i)] =
          ref[std::size_t(i)].step(expect[std::size_t(i)], grads[s][std::size_t(i)], lrs[s]);
      max_diff = std::max(max_diff, std::abs(p[i].item<double>() - expect[std::size_t(i)]));
    }
  }
  std::printf("Adam vs hand-computed (float64, 3 steps): max |diff| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-12);
  // First step of the first element by hand: m̂ = 0.5, v̂ = 0.25 -> p = 1 - 0.1 · 0.5 / (0.5 + 1e-8).
  EXPECT_EQ(adam.steps_taken(), 3);
}

// The CPU update is one fused pass (fused_kernels.cpp); LibTorch's is eight ATen ops, some of them
// FMA-vectorised, so the two agree to float rounding rather than bit for bit. 300 x 700 elements
// so that the update is split across threads.
TEST(Adam, MatchesLibTorchAdam) {
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({300, 700});
  torch::Tensor b = a.clone().requires_grad_(true);
  a.requires_grad_(true);
  Adam ours({{"a", a}}, AdamConfig{0.9, 0.99, 1e-6});
  torch::optim::Adam theirs({b}, torch::optim::AdamOptions(0.01).betas({0.9, 0.99}).eps(1e-6));
  for (int s = 0; s < 5; ++s) {
    torch::Tensor g = torch::randn({300, 700});
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    ours.step(0.01);
    theirs.step();
  }
  const double max_diff = (a - b).abs().max().item<double>();
  std::printf("Adam vs torch::optim::Adam (float32, 5 steps, lr 0.01): max |diff| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-6);
}

// A non-contiguous parameter takes the ATen formulation; both paths must give the same update.
TEST(Adam, FusedAndAtenPathsAgree) {
  torch::manual_seed(4);
  torch::Tensor base = torch::randn({64, 50});
  torch::Tensor dense = base.clone();
  torch::Tensor strided = base.t().contiguous().t();  // same values, column-major
  ASSERT_FALSE(strided.is_contiguous());
  Adam fused({{"w", dense}}, AdamConfig{});
  Adam aten({{"w", strided}}, AdamConfig{});
  for (int s = 0; s < 4; ++s) {
    torch::Tensor g = torch::randn({64, 50});
    dense.mutable_grad() = g.clone();
    strided.mutable_grad() = g.t().contiguous().t();
    fused.step(1e-2);
    aten.step(1e-2);
  }
  const double max_diff = (dense - strided).abs().max().item<double>();
  std::printf("Adam fused vs ATen path (4 steps): max |diff| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-6);
  EXPECT_GT((dense - base).abs().max().item<double>(), 1e-3);  // the parameters did move
}

TEST(Adam, ResetSlicesAndStateRoundTrip) {
  torch::Tensor w = torch::ones({3, 4});
  Adam adam({{"w", w}}, AdamConfig{});
  w.mutable_grad() = torch::ones({3, 4});
  adam.step(0.1);
  adam.reset_slices("w", 1, torch::tensor({1, 3}, torch::kInt64));
  auto st = adam.state();
  EXPECT_EQ(st.at("adam.m.w").select(1, 1).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(st.at("adam.v.w").select(1, 3).abs().sum().item<double>(), 0.0);
  EXPECT_GT(st.at("adam.m.w").select(1, 0).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(st.at("adam.t").item<std::int64_t>(), 1);

  torch::Tensor w2 = torch::ones({3, 4});
  Adam other({{"w", w2}}, AdamConfig{});
  other.load_state(st, "ckpt/state.safetensors");
  EXPECT_TRUE(torch::equal(other.state().at("adam.m.w"), st.at("adam.m.w")));
  EXPECT_EQ(other.steps_taken(), 1);

  st["adam.v.w"] = torch::zeros({4, 3});
  try {
    other.load_state(st, "ckpt/state.safetensors");
    FAIL() << "shape mismatch accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt/state.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("adam.v.w"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 4]"), std::string::npos) << e.what();
  }
}

TEST(ClipGradNorm, ScalesToTheLimit) {
  torch::Tensor a = torch::zeros({1}), b = torch::zeros({1});
  a.mutable_grad() = torch::tensor({3.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad().item<double>(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().item<double>(), 0.8, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a, b}, 0.0), 1.0, 1e-6);  // 0 disables: unchanged
  EXPECT_NEAR(a.grad().item<double>(), 0.6, 1e-6);
}

TEST(LatentStats, DeadTrackerAndDensity) {
  DeadLatentTracker dead(3, 10);
  dead.update(torch::tensor({1, 0, 0}, torch::kInt64), 6);
  EXPECT_EQ(dead.dead_count(), 0);
  dead.update(torch::tensor({0, 2, 0}, torch::kInt64), 6);  // latent 2: 12 rows without firing
  EXPECT_TRUE(torch::equal(dead.dead_mask(), torch::tensor({false, false, true})));
  EXPECT_NEAR(dead.dead_fraction(), 1.0 / 3, 1e-12);
  dead.revive(torch::tensor({2}, torch::kInt64));
  EXPECT_EQ(dead.dead_count(), 0);

  FeatureDensity density(3, /*first_step=*/1);
  density.update(0, torch::tensor({5, 5, 5}, torch::kInt64), 10);  // before the window: ignored
  density.update(1, torch::tensor({10, 1, 0}, torch::kInt64), 10);
  torch::Tensor d = density.log10_density();
  EXPECT_NEAR(d[0].item<double>(), std::log10(1.0 + 1e-10), 1e-6);
  EXPECT_NEAR(d[1].item<double>(), std::log10(0.1 + 1e-10), 1e-6);
  EXPECT_NEAR(d[2].item<double>(), -10.0, 1e-6);
  EXPECT_EQ(fire_counts(torch::tensor({{0.0, 1.0}, {2.0, 0.0}, {3.0, 0.0}}))[0].item<std::int64_t>(), 2);
}

TEST(TensorActivationReader, CursorRestoresTheExactStream) {
  torch::Tensor rows = torch::arange(10 * 2, torch::kFloat32).view({10, 2});
  ReaderOptions ro;
  ro.seed = 5;
  ro.batch_rows = 4;
  TensorActivationReader a(rows, ro);
  a.next_batch();
  a.next_batch();
  const auto cursor = a.cursor();
  std::vector<torch::Tensor> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(a.next_batch());  // crosses epochs 0 -> 1 -> 2
  TensorActivationReader b(rows, ro);
  b.restore(cursor);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(b.next_batch(), expected[std::size_t(i)]));
  // Every epoch is a permutation of all rows.
  TensorActivationReader c(rows, ro);
  torch::Tensor seen = torch::cat({c.next_batch(), c.next_batch(), c.next_batch()}).narrow(0, 0, 10);
  EXPECT_TRUE(torch::equal(std::get<0>(seen.select(1, 0).sort()), rows.select(1, 0)));

  ReaderOptions other = ro;
  other.seed = 6;
  TensorActivationReader d(rows, other);
  try {
    d.restore(cursor);
    FAIL() << "cursor of other data accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("seed 6"), std::string::npos) << e.what();
  }
}

TEST(TrainerConfig, SchemaDefaultsMatchTheStruct) {
  const OptionSchema schema = train_schema();
  const TrainerConfig from_schema = trainer_config_from(default_options(schema, "train"));
  EXPECT_EQ(from_schema.identity_json(), TrainerConfig{}.identity_json());
  EXPECT_EQ(from_schema.metrics_every_steps, TrainerConfig{}.metrics_every_steps);
  EXPECT_EQ(from_schema.keep_checkpoints, TrainerConfig{}.keep_checkpoints);
  const nlohmann::json identity = TrainerConfig{}.identity_json();
  for (const auto& [key, value] : identity.items()) {
    const OptionSpec* spec = schema.find(key);
    ASSERT_NE(spec, nullptr) << "train." << key << " is not in the schema";
    EXPECT_FALSE(spec->description.empty()) << key;
  }
}

TEST(TrainerConfig, ValidationNamesTheFieldAndTheRange) {
  TrainerConfig c;
  c.keep_checkpoints = 1;
  try {
    c.validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.keep_checkpoints = 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("≥ 2"), std::string::npos) << e.what();
  }
  TrainerConfig r;
  r.training_tokens = 4096 * 10;
  r.resample_steps = {10};
  EXPECT_THROW(r.validate(), ConfigError);  // step 10 is past the last step (0..9)

  Options o = default_options(train_schema(), "train");
  Options::Entry e = o.entries().at("resample_steps");
  e.value = std::vector<std::string>{"100", "x7"};
  o.set("resample_steps", e);
  try {
    trainer_config_from(o);
    FAIL();
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("train.resample_steps"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("'x7'"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace saelab
