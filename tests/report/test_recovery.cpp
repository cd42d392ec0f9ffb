// Ground-truth recovery metrics against brute force and values computed by hand.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>
#include <torch/types.h>

#include "saelab/eval/recovery.hpp"

namespace m = saelab::metrics;

namespace {

// The best one-to-one matching by trying every injective map of the smaller side into the larger.
double brute_force_best_mass(const torch::Tensor& w) {
  const bool flip = w.size(0) > w.size(1);
  const auto a = (flip ? w.t() : w).contiguous();
  const std::int64_t n = a.size(0), k = a.size(1);
  std::vector<std::int64_t> cols(std::size_t(k), 0);
  std::iota(cols.begin(), cols.end(), 0);
  double best = -1e300;
  do {  // every ordering of the columns; the first n give one injective map
    double mass = 0;
    for (std::int64_t i = 0; i < n; ++i) mass += a[i][cols[std::size_t(i)]].item<double>();
    best = std::max(best, mass);
  } while (std::next_permutation(cols.begin(), cols.end()));
  return best;
}

double matched_mass(const torch::Tensor& w, const std::vector<std::int64_t>& match) {
  double mass = 0;
  std::vector<bool> used(std::size_t(w.size(1)), false);
  for (std::int64_t i = 0; i < w.size(0); ++i) {
    if (match[std::size_t(i)] < 0) continue;
    EXPECT_FALSE(used[std::size_t(match[std::size_t(i)])]) << "column used twice";
    used[std::size_t(match[std::size_t(i)])] = true;
    mass += w[i][match[std::size_t(i)]].item<double>();
  }
  return mass;
}

// A [rows, cols] float64 tensor from values (all doubles, so the literal needs no suffixes).
torch::Tensor mat(std::vector<double> v, std::int64_t rows, std::int64_t cols) {
  return torch::tensor(v, torch::kFloat64).view({rows, cols});
}

}  // namespace

TEST(Recovery, MatchingIsOptimalAgainstBruteForce) {
  torch::manual_seed(3);
  double worst = 0;
  for (auto [n, k] : {std::pair<int, int>{5, 7}, {7, 5}, {6, 6}, {1, 4}, {4, 1}}) {
    for (int trial = 0; trial < 4; ++trial) {
      auto w = torch::rand({n, k}, torch::kFloat64);
      auto match = m::max_weight_matching(w);
      ASSERT_EQ(match.size(), std::size_t(n));
      EXPECT_EQ(std::count(match.begin(), match.end(), -1), std::max(0, n - k));
      const double diff = std::fabs(matched_mass(w, match) - brute_force_best_mass(w));
      worst = std::max(worst, diff);
      EXPECT_LT(diff, 1e-12) << n << "x" << k << " trial " << trial;
    }
  }
  std::printf("matching vs brute force over 20 matrices: max |mass diff| %.3g\n", worst);
  // Greedy takes 0.9 first and is left with 0.0; the optimum pairs the two 0.8s.
  auto w = mat({0.9, 0.8, 0.8, 0.0}, 2, 2);
  EXPECT_DOUBLE_EQ(matched_mass(w, m::max_weight_matching(w)), 1.6);
}

TEST(Recovery, DictionaryMetricsHandComputed) {
  // Planted e0, e1, e2. Decoder: e0, 2·e0 (a duplicate), −(0.6·e1 + 0.8·e2) (|cos| 0.6 / 0.8),
  // e0 + 0.1·e1 (|cos| 1/√1.01 with e0, 0.1/√1.01 with e1).
  auto t = torch::eye(3, torch::kFloat64);
  auto w = mat({1, 0, 0, 2, 0, 0, 0, -0.6, -0.8, 1, 0.1, 0}, 4, 3);
  auto r = m::dictionary_recovery(t, w);
  EXPECT_EQ(r.planted, 3);
  EXPECT_EQ(r.latents, 4);
  // Max |cos| per feature: 1, 0.6, 0.8. One recovered (≥ 0.9).
  EXPECT_NEAR(r.mean_max_cosine, 2.4 / 3.0, 1e-12);
  EXPECT_EQ(r.recovered, 1);
  EXPECT_NEAR(r.fraction_recovered, 1.0 / 3.0, 1e-12);
  // One-to-one: e0–latent 0 or 1 (1), e2–latent 2 (0.8), e1–latent 3 (0.1/√1.01) beats giving
  // latent 2 to e1 (1 + 0.6 + 0).
  EXPECT_NEAR(r.mcc, (1.8 + 0.1 / std::sqrt(1.01)) / 3.0, 1e-12);
  // Best features of the latents: 0, 0, 2, 0.
  EXPECT_EQ(r.best_feature[2].item<std::int64_t>(), 2);
  EXPECT_EQ(r.best_feature[3].item<std::int64_t>(), 0);
  EXPECT_NEAR(r.uniqueness, 2.0 / 4.0, 1e-12);
  EXPECT_EQ(r.features_claimed_by_several, 1);  // e0, by latents 0, 1 and 3 (all ≥ 0.9)
  // A zero decoder row has cosine 0 with everything, not NaN.
  auto zero = m::abs_cosine_matrix(t, torch::zeros({1, 3}, torch::kFloat64));
  EXPECT_EQ(zero.abs().sum().item<double>(), 0.0);
}

TEST(Recovery, ClassificationHandComputed) {
  // Two latents whose best features are 1 and 0. Four rows.
  m::ClassificationAccumulator acc(torch::tensor({1, 0}, torch::kInt64));
  // coefficients [4, 2] (features 0, 1); latents [4, 2].
  auto coef = mat({0, 1, 0, 1, 2, 0, 0, 0}, 4, 2);
  auto lat = mat({3, 0, 1, 0, 0, 5, 0, 0}, 4, 2);
  acc.add(coef.narrow(0, 0, 2), lat.narrow(0, 0, 2));
  acc.add(coef.narrow(0, 2, 2), lat.narrow(0, 2, 2));
  auto c = acc.result();
  // Latent 0 vs feature 1: truth 1,1,0,0, fires 1,1,0,0: P 1, R 1, F1 1, accuracy 1.
  // Latent 1 vs feature 0: truth 0,0,1,0, fires 0,0,1,0: also perfect.
  EXPECT_DOUBLE_EQ(c.precision, 1.0);
  EXPECT_DOUBLE_EQ(c.f1, 1.0);
  EXPECT_EQ(c.rows, 4);
  // Now latent 1 also fires on row 0, where feature 0 is off: P 1/2, R 1, F1 2/3, accuracy 3/4.
  m::ClassificationAccumulator acc2(torch::tensor({1, 0}, torch::kInt64));
  lat[0][1] = 1.0;
  acc2.add(coef, lat);
  auto c2 = acc2.result();
  EXPECT_DOUBLE_EQ(c2.precision, (1.0 + 0.5) / 2.0);
  EXPECT_DOUBLE_EQ(c2.recall, 1.0);
  EXPECT_NEAR(c2.f1, (1.0 + 2.0 / 3.0) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(c2.accuracy, (1.0 + 0.75) / 2.0);
  // A latent that never fires scores 0, not NaN (SAELens's convention).
  m::ClassificationAccumulator acc3(torch::tensor({0}, torch::kInt64));
  acc3.add(coef, torch::zeros({4, 1}));
  EXPECT_DOUBLE_EQ(acc3.result().f1, 0.0);
  EXPECT_TRUE(std::isnan(m::ClassificationAccumulator(torch::tensor({0}, torch::kInt64)).result().f1));
}
