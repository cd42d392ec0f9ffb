// Transcoders: trained by the real trainer on (input, target) row pairs, against a planted MLP.
//   x [4096, 32] Gaussian;  y = ReLU(x A) B  (+ x Cᵀ for the skip case), A [32, 96], B [96, 24]
// The trained transcoder must predict y from x, keep predicting it after its two scales are folded
// into the weights, resume bit for bit, and refuse inputs and targets that are not the same rows.
#include <gtest/gtest.h>

#include "saelab/sae/load.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

struct Mlp {
  torch::Tensor x, y, linear_part;
};

Mlp planted_mlp(bool with_linear_part) {
  torch::manual_seed(21);
  Mlp m;
  m.x = torch::randn({4096, 32});
  const auto A = torch::randn({32, 96}) / std::sqrt(32.0);
  const auto B = torch::randn({96, 24}) / std::sqrt(96.0);
  m.y = at::relu(m.x.mm(A) - 0.5).mm(B) * 7.0;  // targets on another scale than the inputs
  m.linear_part = m.x.mm(torch::randn({32, 24}) / std::sqrt(32.0)) * 7.0;
  if (with_linear_part) m.y = m.y + m.linear_part;
  return m;
}

double explained(const torch::Tensor& y, const torch::Tensor& yhat) {
  return 1.0 - (y - yhat).pow(2).sum().item<double>() / (y - y.mean(0, true)).pow(2).sum().item<double>();
}

test::RunSpec transcoder_run(const std::string& name, const Mlp& m, bool skip, std::int64_t steps = 400) {
  test::RunSpec spec = test::small_run(name);
  spec.data = m.x;
  spec.target = m.y;
  spec.cfg.batch_size = 256;
  spec.cfg.training_tokens = 256 * steps;
  spec.cfg.lr = 3e-3;
  spec.cfg.lr_warmup_steps = 20;
  spec.cfg.resample_steps = {};
  spec.cfg.checkpoint_every_tokens = 256 * 50;
  test::use_plugins(
      spec, "transcoder",
      {{"d_in", std::int64_t(32)}, {"d_out", std::int64_t(24)}, {"d_sae", std::int64_t(192)}, {"skip", skip}},
      {{"mse", {}}, {"l1", {{"coefficient", 0.05}}}}, 5);
  return spec;
}

// Trains, then loads the saved directory and measures its prediction of the raw targets.
double trained_fraction_explained(const test::RunSpec& spec, const Mlp& m, const char* label) {
  test::RunOutcome out = test::train(spec);
  EXPECT_EQ(out.result.status, "completed");
  EXPECT_NE(out.result.output_scale, 1.0) << "the targets get a scale of their own";
  LoadedSae saved = load_sae(test::plugins(), spec.run_dir / "sae", PluginContext{});
  torch::NoGradGuard ng;
  const auto held = m.x.narrow(0, 3072, 1024);
  const double ev = explained(m.y.narrow(0, 3072, 1024), saved.sae->forward(held).reconstruction);
  const double l0 = (saved.sae->encode(held) > 0).sum(1).to(torch::kFloat64).mean().item<double>();
  std::printf(
      "%s: saved transcoder explains %.4f of the planted MLP's output variance (L0 %.1f, training EV %.4f, "
      "input scale %.3f, output scale %.3f)\n",
      label, ev, l0, out.result.last_metrics.values["explained_variance"], out.result.input_scale,
      out.result.output_scale);
  EXPECT_EQ(saved.meta.hook_name_out, "synthetic.target");
  return ev;
}

TEST(Transcoder, LearnsAPlantedMlpAndPredictsRawTargetsOnceSaved) {
  const Mlp m = planted_mlp(false);
  const double ev = trained_fraction_explained(transcoder_run("mlp", m, false), m, "transcoder");
  EXPECT_GT(ev, 0.85);
}

// With a linear part in the target, the skip connection takes it: a better fit than without.
TEST(Transcoder, SkipConnectionTakesTheLinearPart) {
  const Mlp m = planted_mlp(true);
  const test::RunSpec skip = transcoder_run("skip", m, true);
  const double with_skip = trained_fraction_explained(skip, m, "skip_transcoder");
  const double without = trained_fraction_explained(transcoder_run("noskip", m, false), m, "transcoder");
  EXPECT_GT(with_skip, without);
  EXPECT_GT(with_skip, 0.85);
  auto cfg = nlohmann::json::parse(test::read_bytes(skip.run_dir / "sae" / "cfg.json"));
  EXPECT_EQ(cfg["architecture"], "skip_transcoder");
  EXPECT_EQ(cfg["d_out"], 24);
  EXPECT_EQ(cfg["apply_b_dec_to_input"], false);
  EXPECT_EQ(cfg["hook_name_out"], "synthetic.target");
}

TEST(Transcoder, ResumesBitForBit) {
  const Mlp m = planted_mlp(false);
  test::RunSpec full = transcoder_run("full", m, true, 120);
  auto a = test::train(full);
  test::RunSpec part = transcoder_run("parts", m, true, 120);
  part.callbacks = {std::make_shared<test::StopAt>(55)};
  ASSERT_EQ(test::train(part).result.status, "stopped");
  part.callbacks.clear();
  RunOptions resume;
  resume.resume = true;
  auto b = test::train(part, resume);
  ASSERT_EQ(b.result.status, "completed");
  EXPECT_EQ(b.result.resumed_from_step.value_or(-1), 55);
  double worst = 0;
  for (const auto& [name, t] : a.sae->state())
    worst = std::max(worst, test::max_abs_diff(t, b.sae->state().at(name)));
  std::printf("transcoder resumed at step 55 vs uninterrupted: max |diff| over parameters = %.3g\n", worst);
  EXPECT_EQ(worst, 0.0);
}

TEST(Transcoder, RefusesInputAndTargetRowsThatAreNotTheSameTokens) {
  const Mlp m = planted_mlp(false);
  test::RunSpec spec = transcoder_run("misaligned", m, false, 10);
  // Provenance of in-memory rows is their index: a target set of another size is shuffled
  // differently, as a store of another harvest would be.
  spec.target = m.y.narrow(0, 0, 2048);
  const std::string err = test::error_of([&] { test::train(spec); });
  std::printf("misaligned target rows: %s\n", err.c_str());
  EXPECT_TRUE(test::contains(err, "the input and target stores are not aligned")) << err;
}

TEST(Transcoder, NeedsATargetAndRefusesResampling) {
  const Mlp m = planted_mlp(false);
  test::RunSpec spec = transcoder_run("no_target", m, false, 10);
  spec.target = torch::Tensor();
  std::string err = test::error_of([&] { test::train(spec); });
  EXPECT_TRUE(test::contains(err, "it is a transcoder and needs a target hook (train.target_hook)")) << err;
  spec = transcoder_run("resampling", m, false, 10);
  spec.cfg.resample_steps = {5};
  err = test::error_of([&] { test::train(spec); });
  EXPECT_TRUE(test::contains(err, "cannot resample dead latents; remove train.resample_steps")) << err;
}

}  // namespace
}  // namespace saelab
