// Which activations become stored rows (saelab/data/harvest_rows.hpp), against hand-built inputs:
// left-out positions and tokens, provenance of every kept row, and the statistics a store
// computes from them no longer seeing an outlier.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "saelab/data/harvest_rows.hpp"
#include "support/support.hpp"

namespace saelab {
namespace {

// acts[b, t, :] = 100 b + t in every column, so a row says where it came from.
at::Tensor labelled_acts(std::int64_t B, std::int64_t T, std::int64_t d) {
  auto bt = at::arange(B).view({B, 1}) * 100 + at::arange(T).view({1, T});
  return bt.to(at::kFloat).unsqueeze(-1).expand({B, T, d}).contiguous();
}

TEST(HarvestRows, FirstPositionsAndExcludedTokensAreLeftOut) {
  const auto tokens = at::tensor({5, 7, 2, 9, 2, 5, 6, 7}, at::kLong).view({2, 4});  // 2 = a control token
  RowFilter f;
  f.first_position = 1;
  f.excluded_tokens = {2};
  const auto r = harvest_rows(labelled_acts(2, 4, 3), tokens, /*first_sequence=*/10, f);
  // Kept: (0,1) tok 7, (0,3) tok 9, (1,1) tok 5, (1,2) tok 6, (1,3) tok 7; (0,2) and (1,0) are 2.
  EXPECT_TRUE(r.tokens.equal(at::tensor({7, 9, 5, 6, 7}, at::kInt)));
  EXPECT_TRUE(r.sequence.equal(at::tensor({10, 10, 11, 11, 11}, at::kLong)));
  EXPECT_TRUE(r.position.equal(at::tensor({1, 3, 1, 2, 3}, at::kInt)));
  EXPECT_TRUE(r.activations.select(1, 2).equal(at::tensor({1.f, 3.f, 101.f, 102.f, 103.f})));
  EXPECT_EQ(r.activations.sizes(), (at::IntArrayRef{5, 3}));
}

TEST(HarvestRows, NoFilterKeepsEveryRowInOrder) {
  const auto tokens = at::randint(50, {3, 5}, at::kLong);
  const auto r = harvest_rows(labelled_acts(3, 5, 2), tokens, 0, RowFilter{});
  EXPECT_EQ(r.tokens.numel(), 15);
  EXPECT_TRUE(r.tokens.equal(tokens.reshape({-1}).to(at::kInt)));
  EXPECT_TRUE(r.position.equal(at::arange(5, at::kInt).repeat({3})));
}

// The point of the filter: an attention-sink row (norm 1000x the rest) is not among the rows, so
// the mean norm a store records for normalisation is that of ordinary positions.
TEST(HarvestRows, TheSinkNoLongerSkewsTheMeanNorm) {
  auto acts = at::ones({4, 8, 16});
  acts.select(1, 0).fill_(1000.0);  // position 0 of every sequence
  const auto tokens = at::randint(3, 50, {4, 8}, at::kLong);
  RowFilter f;
  f.first_position = 1;
  const auto kept = harvest_rows(acts, tokens, 0, f).activations;
  const double mean_norm = kept.norm(2, 1).mean().item<double>();
  const double all_norm = acts.reshape({-1, 16}).norm(2, 1).mean().item<double>();
  std::printf("  mean row norm: %.1f without the sink positions, %.1f with them\n", mean_norm, all_norm);
  EXPECT_NEAR(mean_norm, 4.0, 1e-5);
  EXPECT_GT(all_norm, 100.0);
}

TEST(HarvestRows, MismatchedShapesAreRefused) {
  const auto msg = test::error_of([] {
    harvest_rows(at::zeros({2, 3, 4}), at::zeros({2, 4}, at::kLong), 0, {});
  });
  EXPECT_TRUE(test::contains(msg, "do not match tokens")) << msg;
}

}  // namespace
}  // namespace saelab
