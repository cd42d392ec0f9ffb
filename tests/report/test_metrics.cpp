// Metrics against values computed by hand on tiny tensors.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/eval/metrics.hpp"

namespace m = saelab::metrics;

namespace {
torch::Tensor T(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> r;
  for (auto& v : rows) r.push_back(torch::tensor(v, torch::kFloat64));
  return torch::stack(r).to(torch::kFloat32);
}
}  // namespace

TEST(Metrics, ExplainedVarianceHandComputed) {
  // x = [[1,0],[3,0]]: mean [2,0], Σ‖x − mean‖² = 2. x̂ differs by 1 in one element: SSE 1.
  m::ReconstructionAccumulator acc;
  acc.add(T({{1, 0}, {3, 0}}), T({{1, 1}, {3, 0}}));
  auto r = acc.result();
  EXPECT_DOUBLE_EQ(r.explained_variance, 0.5);
  EXPECT_DOUBLE_EQ(r.mse, 0.5);               // SSE 1 / 2 tokens (SAELens's mse)
  EXPECT_DOUBLE_EQ(r.mse_per_element, 0.25);  // 1 / (2 tokens · 2 dims)
  EXPECT_DOUBLE_EQ(r.variance_per_token, 1.0);
  EXPECT_EQ(r.tokens, 2);
}

TEST(Metrics, ExplainedVarianceStreamsOverBatches) {
  // x = [[1,2],[3,4],[5,6]]: mean [3,4], Σ‖x − mean‖² = 8 + 0 + 8 = 16. SSE = 1 + 1 = 2.
  // Split into batches of 1 and 2 rows; the pooled result must be 1 − 2/16 exactly.
  m::ReconstructionAccumulator acc;
  acc.add(T({{1, 2}}), T({{2, 2}}));
  acc.add(T({{3, 4}, {5, 6}}), T({{3, 4}, {5, 5}}));
  auto r = acc.result();
  EXPECT_NEAR(r.explained_variance, 0.875, 1e-12);
  EXPECT_NEAR(r.mse, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.mse_per_element, 2.0 / 6.0, 1e-12);
  EXPECT_NEAR(r.variance_per_token, 16.0 / 3.0, 1e-12);
}

TEST(Metrics, ExplainedVarianceSurvivesLargeMeans) {
  // A huge constant component (as GPT-2's residual stream has) must not change the result: the
  // variance is taken around the mean, not as Σ‖x‖² − N‖mean‖².
  m::ReconstructionAccumulator acc;
  const double big = 3e4;
  acc.add(T({{1 + big, 2}}), T({{2 + big, 2}}));
  acc.add(T({{3 + big, 4}, {5 + big, 6}}), T({{3 + big, 4}, {5 + big, 5}}));
  EXPECT_NEAR(acc.result().explained_variance, 0.875, 1e-6);
}

TEST(Metrics, CosineBiasAndNorms) {
  // Token 1: x = [2,0], x̂ = [1,0] (cos 1, ratio 0.5). Token 2: x = [1,0], x̂ = [1,1] (cos 1/√2).
  m::ReconstructionAccumulator acc;
  acc.add(T({{2, 0}, {1, 0}}), T({{1, 0}, {1, 1}}));
  auto r = acc.result();
  EXPECT_NEAR(r.cosine_similarity, (1.0 + 1.0 / std::sqrt(2.0)) / 2.0, 1e-12);
  // Σ‖x̂‖² = 1 + 2 = 3, Σ x·x̂ = 2 + 1 = 3.
  EXPECT_NEAR(r.relative_reconstruction_bias, 1.0, 1e-12);
  EXPECT_NEAR(r.l2_norm_in, 1.5, 1e-12);
  EXPECT_NEAR(r.l2_norm_out, (1.0 + std::sqrt(2.0)) / 2.0, 1e-12);
  EXPECT_NEAR(r.l2_ratio, (0.5 + std::sqrt(2.0)) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(m::relative_reconstruction_bias(1.0, 2.0), 0.5);  // x = [2,0], x̂ = [1,0]
}

TEST(Metrics, CosineOfZeroVectorIsZero) {
  auto c = m::cosine_similarity(T({{0, 0}, {1, 0}}), T({{1, 1}, {0, 0}}));
  EXPECT_EQ(c[0].item<double>(), 0.0);
  EXPECT_EQ(c[1].item<double>(), 0.0);
}

TEST(Metrics, SparsityHandComputed) {
  m::LatentFiringAccumulator acc(3);
  acc.add(T({{0, 1, 2}, {0, 0, 0}, {3, 0, -1}}));  // non-zeros per token 2, 0, 2
  acc.add(T({{0, 0, 0}}));
  auto s = acc.result();
  EXPECT_EQ(s.tokens, 4);
  EXPECT_DOUBLE_EQ(s.l0, 1.0);        // (2 + 0 + 2 + 0) / 4
  EXPECT_DOUBLE_EQ(s.l1, 7.0 / 4.0);  // (3 + 0 + 4 + 0) / 4
  EXPECT_EQ(s.dead_latents, 0);
  auto counts = acc.fire_counts();
  EXPECT_EQ(counts[0].item<std::int64_t>(), 1);
  EXPECT_EQ(counts[1].item<std::int64_t>(), 1);
  EXPECT_EQ(counts[2].item<std::int64_t>(), 2);
  EXPECT_FLOAT_EQ(acc.max_activation()[0].item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(acc.max_activation()[2].item<float>(), 2.0f);
  EXPECT_DOUBLE_EQ(acc.sum_activation()[2].item<double>(), 1.0);
}

TEST(Metrics, DeadLatentsAndDensity) {
  EXPECT_EQ(m::dead_latents(torch::tensor({0, 3, 0, 1}, torch::kInt64)), 2);
  EXPECT_DOUBLE_EQ(m::feature_density(5, 20), 0.25);
  EXPECT_NEAR(m::log10_feature_density(1, 1000), -3.0, 1e-6);
  EXPECT_DOUBLE_EQ(m::log10_feature_density(0, 1000), -10.0);
  EXPECT_TRUE(std::isnan(m::feature_density(0, 0)));
}

TEST(Metrics, CeLossScoreHandComputed) {
  EXPECT_DOUBLE_EQ(m::ce_loss_score(2.0, 2.5, 4.0), 0.75);
  EXPECT_DOUBLE_EQ(m::ce_loss_score(2.0, 2.0, 4.0), 1.0);
  EXPECT_DOUBLE_EQ(m::ce_loss_score(2.0, 4.0, 4.0), 0.0);
  EXPECT_TRUE(std::isnan(m::ce_loss_score(2.0, 2.0, 2.0)));  // ablation changes nothing
  EXPECT_DOUBLE_EQ(m::kl_div_score(0.1, 0.4), 0.75);
}

TEST(Metrics, KlDivergenceHandComputed) {
  // p = softmax([0, ln 3]) = [1/4, 3/4], q = softmax([0, 0]) = [1/2, 1/2].
  // KL = 1/4·ln(1/2) + 3/4·ln(3/2) = 0.130812035941137...
  auto p = torch::tensor({0.0, std::log(3.0)}, torch::kFloat64).view({1, 2});
  auto q = torch::zeros({1, 2}, torch::kFloat64);
  const double expected = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  EXPECT_NEAR(m::kl_divergence(p, q)[0].item<double>(), expected, 1e-12);
  EXPECT_NEAR(m::kl_divergence(p, p)[0].item<double>(), 0.0, 1e-12);
}

TEST(Metrics, DownstreamAccumulatorMasksPositions) {
  m::DownstreamAccumulator acc;
  auto mask = torch::tensor({1, 1, 1, 0}, torch::kBool).view({2, 2});
  auto v = [](std::vector<double> x) { return torch::tensor(x, torch::kFloat64).view({2, 2}); };
  acc.add_ce(v({1, 2, 3, 100}), v({2, 3, 4, 100}), v({4, 5, 6, 100}), mask);
  acc.add_kl(v({0.1, 0.2, 0.3, 9}), v({1, 1, 1, 9}), mask);
  auto r = acc.result();
  EXPECT_EQ(r.ce_positions, 3);
  EXPECT_DOUBLE_EQ(r.ce_clean, 2.0);
  EXPECT_DOUBLE_EQ(r.ce_spliced, 3.0);
  EXPECT_DOUBLE_EQ(r.ce_ablated, 5.0);
  EXPECT_DOUBLE_EQ(r.ce_loss_score, 2.0 / 3.0);
  EXPECT_NEAR(r.kl_spliced, 0.2, 1e-15);
  EXPECT_NEAR(r.kl_div_score, 0.8, 1e-15);
}

TEST(Metrics, EmptyAccumulatorsGiveNullNotGarbage) {
  m::ReconstructionAccumulator acc;
  auto j = acc.result().to_json();
  EXPECT_TRUE(j["explained_variance"].is_null());
  EXPECT_TRUE(m::json_number(std::nan("")).is_null());
  EXPECT_EQ(m::json_number(1.5).get<double>(), 1.5);
}

TEST(Metrics, ShapeMismatchNamesBothShapes) {
  m::ReconstructionAccumulator acc;
  try {
    acc.add(T({{1, 2}}), T({{1, 2, 3}}));
    FAIL() << "no error";
  } catch (const saelab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 2]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[1, 3]"), std::string::npos) << e.what();
  }
}

TEST(Metrics, L0DistributionAndDenseFractionsHandComputed) {
  // 10 tokens over 4 latents. Latent 0 fires on 5 tokens (density 0.5), latent 1 on 1 (0.1, not
  // over 10%), latent 2 on 0 (dead), latent 3 on 10 (1.0). Per-token L0: 3,2,2,2,2,1,1,1,1,1.
  std::vector<std::vector<double>> rows;
  for (int t = 0; t < 10; ++t) rows.push_back({t < 5 ? 1.0 : 0.0, t == 0 ? 1.0 : 0.0, 0.0, 2.0});
  m::LatentFiringAccumulator acc(4);
  acc.add(T(rows));
  auto s = acc.result();
  EXPECT_DOUBLE_EQ(s.l0, 1.6);
  EXPECT_DOUBLE_EQ(s.frac_alive, 0.75);
  EXPECT_DOUBLE_EQ(s.freq_over_1_percent, 0.75);  // 0.5, 0.1, 1.0 are > 0.01
  EXPECT_DOUBLE_EQ(s.freq_over_10_percent, 0.5);  // 0.5 and 1.0 (0.1 is not > 0.1)
  EXPECT_DOUBLE_EQ(s.l0_distribution.p10, 1.0);
  EXPECT_DOUBLE_EQ(s.l0_distribution.p50, 1.0);  // 5 of 10 tokens have L0 ≤ 1
  EXPECT_DOUBLE_EQ(s.l0_distribution.p90, 2.0);  // 9 of 10 have L0 ≤ 2
  EXPECT_DOUBLE_EQ(s.l0_distribution.max, 3.0);
  // Σk² = 9 + 4·4 + 5 = 30: E[k²] = 3, mean 1.6, variance 3 − 2.56 = 0.44.
  EXPECT_NEAR(s.l0_distribution.std, std::sqrt(0.44), 1e-12);
}

TEST(Metrics, MaxCosineToOthersHandComputed) {
  // Rows e0, e0 + e1 (45° from e0), −e0, 0: the zero row has cosine 0 with everything.
  auto c = m::max_cosine_to_others(T({{1, 0}, {1, 1}, {-1, 0}, {0, 0}}));
  EXPECT_NEAR(c[0].item<double>(), 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(c[1].item<double>(), 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(c[2].item<double>(), 0.0, 1e-12);  // its best is the zero row, not e0 (cosine −1)
  EXPECT_NEAR(c[3].item<double>(), 0.0, 1e-12);
  // Blocks of 512 rows: a row past the first block finds its twin in the first.
  auto big = torch::randn({700, 8}, torch::kFloat64);
  big[650] = big[3] * 2.0;
  EXPECT_NEAR(m::max_cosine_to_others(big)[650].item<double>(), 1.0, 1e-12);
}

TEST(Metrics, DownstreamMeanAblationAndErrorTerm) {
  m::DownstreamAccumulator acc;
  auto mask = torch::tensor({1, 1, 1, 0}, torch::kBool).view({2, 2});
  auto v = [](std::vector<double> x) { return torch::tensor(x, torch::kFloat64).view({2, 2}); };
  acc.add_ce(v({1, 2, 3, 100}), v({2, 3, 4, 100}), v({4, 5, 6, 100}), mask);
  acc.add_ce(m::ModelRun::MeanAblated, v({3, 4, 5, 100}), mask);
  acc.add_ce(m::ModelRun::WithErrorTerm, v({1, 2.5, 3, 0}), mask);
  acc.add_error_term_gap(v({1, 2, 3, 100}), v({1, 2.5, 3, 0}), mask);
  acc.add_kl(v({0.1, 0.2, 0.3, 9}), v({1, 1, 1, 9}), mask);
  acc.add_kl(m::ModelRun::MeanAblated, v({0.4, 0.4, 0.4, 9}), mask);
  auto r = acc.result();
  EXPECT_DOUBLE_EQ(r.ce_mean_ablated, 4.0);
  EXPECT_DOUBLE_EQ(r.ce_loss_score_mean_ablation, 0.5);   // (4 − 3) / (4 − 2)
  EXPECT_NEAR(r.kl_div_score_mean_ablation, 0.5, 1e-15);  // (0.4 − 0.2) / 0.4
  EXPECT_DOUBLE_EQ(r.ce_with_error_term, 6.5 / 3.0);
  EXPECT_DOUBLE_EQ(r.error_term_max_abs_ce_diff, 0.5);  // the masked-out 100 vs 0 does not count
  EXPECT_TRUE(std::isnan(m::DownstreamAccumulator().result().ce_with_error_term));
}
