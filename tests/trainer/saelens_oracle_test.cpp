// SAELens loads what saelab saves: each architecture is trained briefly by the real trainer (inputs
// scaled by 3, so the saved SAE has the input normalisation folded into its weights), saved, then
// loaded by sae_lens's SAE.load_from_disk in Python and by saelab's own loader. Both encode the
// same raw activations; the latents must agree.
//
// Needs SAELAB_SAELENS_PYTHON (scripts/setup.sh --oracle makes .venv-saelens) and fails without it.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include <gtest/gtest.h>

#include "saelab/formats/safetensors.hpp"
#include "saelab/sae/load.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

std::optional<std::string> saelens_python() {
  const char* py = std::getenv("SAELAB_SAELENS_PYTHON");
  if (!py || !*py || !fs::exists(py)) {
    ADD_FAILURE() << "SAELAB_SAELENS_PYTHON is " << (py ? cat("'", py, "', which does not exist") : "not set")
                  << ". This test loads saelab's saved SAEs with the Python sae_lens package. Create its "
                     "venv with `scripts/setup.sh --oracle` (pins in tests/oracle/saelens-requirements.txt) "
                     "and export SAELAB_SAELENS_PYTHON=<repo>/.venv-saelens/bin/python.";
    return std::nullopt;
  }
  return std::string(py);
}

// Runs the oracle script; returns its exit code and echoes its output.
int run_saelens(const std::string& python, const std::vector<fs::path>& args, const fs::path& log) {
  std::string cmd = cat("'", python, "' '", SAELAB_SOURCE_DIR, "/tests/trainer/oracle_saelens_encode.py'");
  for (const auto& a : args) cmd += cat(" '", a.string(), "'");
  cmd += cat(" > '", log.string(), "' 2>&1");
  const int status = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  std::printf("[sae_lens] %s", out.str().c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Case {
  std::string sae;
  test::Values options;
  test::LossList losses;
  std::string saelens_architecture;  // what SAELens must load it as
  bool transcoder = false;           // trained on (data, a planted MLP of it) pairs
};

// A planted MLP of the rows, [n, 32] -> [n, 24], as a transcoder's target.
torch::Tensor planted_target(const torch::Tensor& x) {
  torch::manual_seed(4);
  return at::relu(x.mm(torch::randn({32, 64}) / std::sqrt(32.0))).mm(torch::randn({64, 24}) / 8.0);
}

// `run_dir`, when given, receives the run directory (the saved SAE is run_dir/sae).
void check_case(const Case& c, fs::path* run_dir = nullptr) {
  auto py = saelens_python();
  if (!py) return;
  test::RunSpec spec = test::small_run(cat("saelens_", c.sae));
  if (run_dir) *run_dir = spec.run_dir;
  spec.data = spec.data * 3.0;
  if (c.transcoder) {
    spec.target = planted_target(spec.data) * 5.0;
    spec.cfg.resample_steps = {};
  }
  test::use_plugins(spec, c.sae, c.options, c.losses, 4);
  ASSERT_EQ(test::train(spec).result.status, "completed");

  const fs::path dir = spec.run_dir / "sae";
  LoadedSae ours = load_sae(test::plugins(), dir, PluginContext{});
  const torch::Tensor x = spec.data.slice(0, 0, 300).contiguous();  // [300, d_in] raw activations
  torch::Tensor z, y;                                               // [300, d_sae], [300, d_out]
  {
    torch::NoGradGuard g;
    z = ours.sae->encode(x);
    if (c.transcoder) y = ours.sae->forward(x).reconstruction;
  }
  safetensors::save(spec.run_dir / "x.safetensors", {{"x", x}});
  ASSERT_EQ(run_saelens(*py, {dir, spec.run_dir / "x.safetensors", spec.run_dir / "z.safetensors"},
                        spec.run_dir / "saelens.log"),
            0);
  safetensors::File theirs = safetensors::load(spec.run_dir / "z.safetensors");
  EXPECT_EQ(theirs.metadata["architecture"], c.saelens_architecture);
  const torch::Tensor zt = theirs.tensors.at("z");
  ASSERT_EQ(zt.sizes(), z.sizes());
  const double scale = z.abs().max().item<double>();
  const double diff = (zt.to(torch::kFloat64) - z.to(torch::kFloat64)).abs().max().item<double>();
  const double l0 = z.ne(0).sum(1).to(torch::kFloat64).mean().item<double>();
  const std::int64_t active_mismatch = zt.ne(0).ne(z.ne(0)).sum().item<std::int64_t>();
  std::printf(
      "%s saved as '%s': sae_lens vs saelab encode max |diff| = %.3g (max |z| %.3g, L0 %.2f, %lld latents "
      "active in one only)\n",
      c.sae.c_str(), c.saelens_architecture.c_str(), diff, scale, l0,
      static_cast<long long>(active_mismatch));
  EXPECT_GT(l0, 0.5) << "the comparison needs latents that fire";
  EXPECT_LT(diff, 1e-5 * std::max(1.0, scale));
  EXPECT_EQ(active_mismatch, 0);
  if (!c.transcoder) return;
  ASSERT_EQ(theirs.tensors.count("y"), 1u) << "sae_lens did not load a Transcoder";
  const double ydiff =
      (theirs.tensors.at("y").to(torch::kFloat64) - y.to(torch::kFloat64)).abs().max().item<double>();
  const double yscale = y.abs().max().item<double>();
  std::printf("%s output: sae_lens vs saelab max |diff| = %.3g (max |y| %.3g)\n", c.sae.c_str(), ydiff,
              yscale);
  EXPECT_LT(ydiff, 1e-5 * std::max(1.0, yscale));
}

TEST(SaelensOracle, StandardReluL1) {
  check_case({"relu_l1",
              {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}},
              {{"mse", {}}, {"l1", {{"coefficient", 0.1}}}},
              "standard"});
}

TEST(SaelensOracle, TopK) {
  check_case({"topk",
              {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}, {"k", std::int64_t(6)}},
              {{"mse", {}}},
              "topk"});
}

// SAELens has no inference BatchTopK: saelab saves it as JumpReLU with the learned threshold.
TEST(SaelensOracle, BatchTopKSavedAsJumpRelu) {
  check_case({"batchtopk",
              {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}, {"k", std::int64_t(6)}},
              {{"mse", {}}},
              "jumprelu"});
}

TEST(SaelensOracle, Gated) {
  check_case({"gated",
              {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}},
              {{"mse", {}}, {"gate_l1", {{"coefficient", 0.1}}}, {"gate_aux", {}}},
              "gated"});
}

// Saved as SAELens saves matryoshka_batchtopk: a JumpReLU with the learned threshold, the prefix
// sizes kept in cfg.json.
TEST(SaelensOracle, MatryoshkaBatchTopKSavedAsJumpRelu) {
  fs::path run_dir;
  check_case({"matryoshka_batchtopk",
              {{"d_in", std::int64_t(32)},
               {"d_sae", std::int64_t(96)},
               {"k", std::int64_t(6)},
               {"matryoshka_widths", std::vector<std::string>{"16", "48"}}},
              {{"mse", {}}, {"matryoshka", {}}, {"auxk", {}}},
              "jumprelu"},
             &run_dir);
  ASSERT_FALSE(run_dir.empty());
  const auto cfg = nlohmann::json::parse(test::read_bytes(run_dir / "sae" / "cfg.json"));
  EXPECT_EQ(cfg["matryoshka_widths"], nlohmann::json({16, 48, 96})) << cfg.dump();
}

TEST(SaelensOracle, Transcoder) {
  check_case({"transcoder",
              {{"d_in", std::int64_t(32)}, {"d_out", std::int64_t(24)}, {"d_sae", std::int64_t(96)}},
              {{"mse", {}}, {"l1", {{"coefficient", 0.1}}}},
              "transcoder",
              true});
}

TEST(SaelensOracle, SkipTranscoder) {
  check_case(
      {"transcoder",
       {{"d_in", std::int64_t(32)}, {"d_out", std::int64_t(24)}, {"d_sae", std::int64_t(96)}, {"skip", true}},
       {{"mse", {}}, {"l1", {{"coefficient", 0.1}}}},
       "skip_transcoder",
       true});
}

TEST(SaelensOracle, JumpRelu) {
  check_case({"jumprelu",
              {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}},
              {{"mse", {}}, {"l0", {{"coefficient", 0.01}}}},
              "jumprelu"});
}

}  // namespace
}  // namespace saelab
