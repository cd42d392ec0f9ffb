// The synthetic planted-dictionary source: the dictionary's statistics, determinism, and the
// plugin loaded through the host (hooks, replacement loss, true_features.safetensors).
#include <cmath>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/formats/safetensors.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

TEST(SyntheticDictionary, UnitFeaturesSparseNonNegativeCodes) {
  synthetic::Dictionary dict({256, 1024, 0.004, "uniform", 1.0, 0});
  const torch::Tensor& f = dict.features();
  EXPECT_LT((f.norm(2, {1}) - 1).abs().max().item<double>(), 1e-5);
  torch::Tensor cos = f.matmul(f.t()) - torch::eye(1024);
  const double max_cos = cos.abs().max().item<double>();
  std::printf("max |cosine| between true features: %.3f\n", max_cos);
  EXPECT_LT(max_cos, 0.4);

  double active = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto c = dict.code(synthetic::mix64(std::uint64_t(i)));
    active += double(c.feature.size());
    for (float v : c.coefficient) ASSERT_GE(v, 0.0f);
  }
  std::printf("mean active features per row: %.3f (expected %.3f)\n", active / n, 1024 * 0.004);
  EXPECT_NEAR(active / n, 1024 * 0.004, 0.1);

  // rows() is the sum the code describes, and the same key always gives the same row.
  const std::uint64_t key = 123456789;
  auto c = dict.code(key);
  torch::Tensor expect = torch::zeros({256});
  for (std::size_t j = 0; j < c.feature.size(); ++j) expect += c.coefficient[j] * f[c.feature[j]];
  torch::Tensor row = dict.rows({key, key});
  EXPECT_LT((row[0] - expect).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(torch::equal(row[0], row[1]));
}

class SyntheticPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    PluginContext ctx;
    ctx.run_dir = test::scratch_dir("synthetic_plugin");
    run_dir = ctx.run_dir;
    source = test::plugins().create<ActivationSource>("synthetic",
                                                      test::plugin_options("source", "synthetic", {}), ctx);
  }
  fs::path run_dir;
  std::shared_ptr<ActivationSource> source;
};

TEST_F(SyntheticPlugin, HookRowsDependOnTheTokenPrefix) {
  EXPECT_EQ(source->info().hooks.at("synthetic.hook"), 256);
  EXPECT_EQ(source->info().vocab_size, 256);
  auto tokens = source->tokenize("hello");
  EXPECT_EQ(source->decode(tokens), "hello");
  torch::Tensor t = torch::tensor({{1, 2, 3, 4}, {1, 2, 9, 4}}, torch::kInt64);
  auto out = source->run_with_hooks(t, {"synthetic.hook"});
  torch::Tensor h = out.at("synthetic.hook");
  ASSERT_EQ(h.sizes(), (std::vector<std::int64_t>{2, 4, 256}));
  EXPECT_TRUE(torch::equal(h[0][1], h[1][1]));   // same prefix "1 2"
  EXPECT_FALSE(torch::equal(h[0][2], h[1][2]));  // prefixes differ from position 2 on
  EXPECT_FALSE(torch::equal(h[0][3], h[1][3]));
  EXPECT_TRUE(torch::equal(h, source->run_with_hooks(t, {"synthetic.hook"}).at("synthetic.hook")));
  try {
    source->run_with_hooks(t, {"blocks.0.hook_resid_pre"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.hook_resid_pre"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("synthetic.hook"), std::string::npos);
  }
}

TEST_F(SyntheticPlugin, ReplacementLossMeasuresTheReconstruction) {
  torch::Tensor t = torch::randint(0, 256, {4, 32}, torch::kInt64);
  auto clean = source->run_with_replacement(t, "synthetic.hook", nullptr, true);
  auto ablated = source->run_with_replacement(
      t, "synthetic.hook", [](const torch::Tensor& h) { return torch::zeros_like(h); }, false);
  auto noisy = source->run_with_replacement(
      t, "synthetic.hook", [](const torch::Tensor& h) { return h + 0.02 * torch::randn_like(h); }, false);
  ASSERT_EQ(clean.loss.sizes(), (std::vector<std::int64_t>{4, 31}));
  EXPECT_EQ(clean.logits.sizes(), (std::vector<std::int64_t>{4, 32, 256}));
  const double ce_clean = clean.loss.mean().item<double>();
  const double ce_ablated = ablated.loss.mean().item<double>();
  const double ce_noisy = noisy.loss.mean().item<double>();
  std::printf("CE clean %.3f, noisy %.3f, zero-ablated %.3f (ln 256 = %.3f)\n", ce_clean, ce_noisy,
              ce_ablated, std::log(256.0));
  EXPECT_NEAR(ce_ablated, std::log(256.0), 1e-4);
  EXPECT_LT(ce_clean, ce_noisy);
  EXPECT_LT(ce_noisy, ce_ablated);
}

TEST_F(SyntheticPlugin, WritesTheTrueDictionary) {
  auto file = safetensors::load(run_dir / "true_features.safetensors");
  const torch::Tensor& f = file.tensors.at("features");
  synthetic::Dictionary dict({256, 1024, 0.004, "uniform", 1.0, 0});
  EXPECT_TRUE(torch::equal(f, dict.features()));
}

}  // namespace
}  // namespace saelab
