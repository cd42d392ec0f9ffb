// Interrupt and resume: the resumed run's final weights are bitwise those of an uninterrupted run.
#include <csignal>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/train/checkpoint.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

void expect_bitwise_equal(const TensorMap& a, const TensorMap& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    const torch::Tensor& u = b.at(name);
    const double max_diff = (t - u).abs().max().item<double>();
    std::printf("%s: %s max |diff| = %.3g\n", what.c_str(), name.c_str(), max_diff);
    EXPECT_TRUE(torch::equal(t, u)) << what << ": " << name << " differs (max |diff| " << max_diff << ")";
  }
}

const TensorMap& reference_weights() {
  static const TensorMap weights = [] {
    test::RunSpec spec = test::small_run("resume_reference");
    test::RunOutcome out = test::train(spec);
    EXPECT_EQ(out.result.status, "completed");
    return out.sae->state();
  }();
  return weights;
}

// Sends itself SIGINT from inside the loop, as a user's Ctrl-C would arrive.
class RaiseSigint : public TrainerCallback {
 public:
  explicit RaiseSigint(std::int64_t step) : step_(step) {}
  void on_metrics(const StepMetrics& m, SaeArchitecture&) override {
    if (m.step == step_) std::raise(SIGINT);
  }

 private:
  std::int64_t step_;
};

TEST(TrainerResume, StopByCallbackThenResumeIsBitwiseIdentical) {
  test::RunSpec first = test::small_run("resume_callback");
  first.callbacks.push_back(std::make_shared<test::StopAt>(25));  // between resamplings 20 and 40
  test::RunOutcome a = test::train(first);
  EXPECT_EQ(a.result.status, "stopped");
  EXPECT_EQ(a.result.steps, 25);
  EXPECT_EQ(a.result.last_checkpoint.filename(), "step-000000000025");

  test::RunSpec second = first;
  second.callbacks.clear();
  second.init_seed = 12345;  // a differently initialised SAE: everything must come from the checkpoint
  RunOptions resume;
  resume.resume = true;
  test::RunOutcome b = test::train(second, resume);
  EXPECT_EQ(b.result.status, "completed");
  ASSERT_TRUE(b.result.resumed_from_step.has_value());
  EXPECT_EQ(*b.result.resumed_from_step, 25);
  expect_bitwise_equal(b.sae->state(), reference_weights(), "callback stop + resume");
}

TEST(TrainerResume, SigintWritesACheckpointAndResumeIsBitwiseIdentical) {
  test::RunSpec first = test::small_run("resume_sigint");
  first.callbacks.push_back(std::make_shared<RaiseSigint>(35));
  test::RunOutcome a = test::train(first);
  EXPECT_EQ(a.result.status, "interrupted");
  EXPECT_EQ(a.result.steps, 35);
  EXPECT_FALSE(fs::exists(first.run_dir / "sae")) << "an interrupted run must not save the SAE";

  test::RunSpec second = first;
  second.callbacks.clear();
  RunOptions resume;
  resume.resume = true;
  test::RunOutcome b = test::train(second, resume);
  EXPECT_EQ(b.result.status, "completed");
  EXPECT_EQ(b.result.resumed_from_step.value_or(-1), 35);
  expect_bitwise_equal(b.sae->state(), reference_weights(), "SIGINT + resume");
  // metrics.jsonl reads as one run: no step logged twice.
  std::ifstream in(first.run_dir / "metrics.jsonl");
  std::set<std::int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("event")) continue;
    EXPECT_TRUE(steps.insert(j["step"].get<std::int64_t>()).second) << "step logged twice: " << line;
  }
  EXPECT_EQ(steps.size(), 12u);
}

TEST(TrainerResume, CorruptNewestCheckpointIsSkippedWithAWarning) {
  test::RunSpec first = test::small_run("resume_corrupt");
  first.callbacks.push_back(std::make_shared<test::StopAt>(30));
  test::train(first);
  auto ckpts = list_train_checkpoints(first.run_dir / "checkpoints");
  ASSERT_EQ(ckpts.front().filename(), "step-000000000030");
  {
    // Flip one byte in the middle of the newest checkpoint's tensors.
    const fs::path f = ckpts.front() / "state.safetensors";
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(std::streamoff(fs::file_size(f) / 2));
    char c = 0;
    io.read(&c, 1);
    io.seekp(std::streamoff(fs::file_size(f) / 2));
    c = char(c ^ 0x5a);
    io.write(&c, 1);
  }
  test::RunSpec second = first;
  second.callbacks.clear();
  RunOptions resume;
  resume.resume = true;
  test::RunOutcome b = test::train(second, resume);
  EXPECT_EQ(b.result.resumed_from_step.value_or(-1), 20);
  ASSERT_FALSE(b.warnings.empty());
  std::printf("warning: %s\n", b.warnings.front().c_str());
  EXPECT_NE(b.warnings.front().find("step-000000000030"), std::string::npos) << b.warnings.front();
  EXPECT_NE(b.warnings.front().find("state.safetensors"), std::string::npos) << b.warnings.front();
  EXPECT_NE(b.warnings.front().find("corrupt"), std::string::npos) << b.warnings.front();
  expect_bitwise_equal(b.sae->state(), reference_weights(), "corrupt newest + resume");
}

TEST(TrainerResume, ChangedConfigIsRefusedUnlessForced) {
  test::RunSpec first = test::small_run("resume_changed");
  first.callbacks.push_back(std::make_shared<test::StopAt>(20));
  test::train(first);
  test::RunSpec changed = first;
  changed.callbacks.clear();
  changed.cfg.lr = 2e-3;
  changed.l1 = 0.2;
  RunOptions resume;
  resume.resume = true;
  try {
    test::train(changed, resume);
    FAIL() << "resume with a changed config accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    std::printf("refusal: %s\n", msg.c_str());
    EXPECT_NE(msg.find("train.lr: 0.001 -> 0.002"), std::string::npos) << msg;
    EXPECT_NE(msg.find("inputs.sae.l1: 0.1 -> 0.2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--force"), std::string::npos) << msg;
  }
  // Bookkeeping options are not part of the hash.
  test::RunSpec bookkeeping = first;
  bookkeeping.callbacks = {std::make_shared<test::StopAt>(25)};
  bookkeeping.cfg.metrics_every_steps = 1;
  bookkeeping.cfg.keep_checkpoints = 5;
  EXPECT_EQ(test::train(bookkeeping, resume).result.resumed_from_step.value_or(-1), 20);

  resume.force = true;
  test::RunOutcome forced = test::train(changed, resume);
  EXPECT_EQ(forced.result.status, "completed");
  EXPECT_EQ(forced.result.resumed_from_step.value_or(-1), 25);
  ASSERT_FALSE(forced.warnings.empty());
  EXPECT_NE(forced.warnings.front().find("as forced"), std::string::npos) << forced.warnings.front();
}

// The same with the real SAE and loss plugins (fused autograd nodes, reused buffers, AuxK).
void plugin_resume_case(const std::string& sae, const test::Values& sae_options,
                        const std::vector<std::pair<std::string, test::Values>>& losses) {
  auto spec_for = [&](const std::string& dir) {
    test::RunSpec spec = test::small_run(dir);
    test::use_plugins(spec, sae, sae_options, losses, 5);
    return spec;
  };
  test::RunOutcome reference = test::train(spec_for("plugin_" + sae + "_reference"));
  test::RunSpec first = spec_for("plugin_" + sae + "_interrupted");
  first.callbacks.push_back(std::make_shared<test::StopAt>(35));
  EXPECT_EQ(test::train(first).result.steps, 35);
  test::RunSpec second = first;
  second.callbacks.clear();
  RunOptions resume;
  resume.resume = true;
  test::RunOutcome b = test::train(second, resume);
  EXPECT_EQ(b.result.resumed_from_step.value_or(-1), 35);
  expect_bitwise_equal(b.sae->state(), reference.sae->state(), sae + " plugin stop + resume");
}

TEST(TrainerResume, PluginSaesResumeBitwiseIdentical) {
  plugin_resume_case("relu_l1",
                     {{"d_in", std::int64_t(32)},
                      {"d_sae", std::int64_t(96)},
                      {"b_dec_init", std::string("geometric_median")}},
                     {{"mse", {}}, {"l1_decoder_norm", {{"coefficient", 0.5}}}});
  plugin_resume_case("topk",
                     {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}, {"k", std::int64_t(4)}},
                     {{"mse", {}}, {"auxk", {{"k_aux", std::int64_t(16)}}}});
}

TEST(TrainerResume, ResamplingRevivesDeadLatents) {
  test::RunSpec spec = test::small_run("resample_revives");
  spec.cfg.resample_steps = {20};
  spec.cfg.training_tokens = 64 * 40;
  spec.cfg.checkpoint_every_tokens = 0;
  // Half the latents can never fire: their encoder bias is hugely negative.
  test::RunOutcome out = test::train_with_setup(spec, {}, [](SaeArchitecture& sae) {
    torch::NoGradGuard g;
    sae.named_parameters()["b_enc"].narrow(0, 0, 48).fill_(-1e4);
  });
  std::ifstream in(spec.run_dir / "metrics.jsonl");
  double dead_before_resample = -1, dead_at_end = -1;
  std::int64_t resampled = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("event")) {
      resampled = j["resampled"].get<std::int64_t>();
      dead_before_resample = j["dead_before"].get<double>();
    } else {
      dead_at_end = j["dead_fraction"].get<double>() * 96;
    }
  }
  std::printf("dead latents: %.0f before resampling, %lld resampled, %.0f at the end\n", dead_before_resample,
              static_cast<long long>(resampled), dead_at_end);
  EXPECT_GE(dead_before_resample, 48);
  EXPECT_GE(resampled, 48);
  EXPECT_LT(dead_at_end, dead_before_resample / 4);
}

}  // namespace
}  // namespace saelab
