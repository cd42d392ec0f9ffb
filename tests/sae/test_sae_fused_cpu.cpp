// The float32 CPU training step runs fused one-pass loops (framework/src/sae/fused_kernels.cpp): the
// bias + ReLU after the encoder GEMM, the ReLU backward with the L1 gradient folded in, the L1 sum,
// the firing counts and the decoder-gradient projection. Each is checked here against the plain
// formula evaluated in float64, at sizes that span several row blocks and both threads, and the
// whole step is checked to give the same bits on one thread as on two.
#include <ATen/Parallel.h>

#include "saelab/sae/loss_math.hpp"
#include "saelab/sae/math.hpp"
#include "saelab/train/latent_stats.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

// 600 rows: two full 256-row blocks and a partial one.
constexpr std::int64_t kBatch = 600, kDin = 48, kDsae = 320;

struct Params {
  at::Tensor W_enc, b_enc, W_dec, b_dec;  // [d_in, d_sae], [d_sae], [d_sae, d_in], [d_in]
};

Params random_params(std::uint64_t seed) {
  at::manual_seed(seed);
  return {at::randn({kDin, kDsae}) * 0.2, at::randn({kDsae}) * 0.1, at::randn({kDsae, kDin}) * 0.2,
          at::randn({kDin}) * 0.1};
}

std::vector<at::Tensor> leaves(const Params& p, at::ScalarType t) {
  std::vector<at::Tensor> out;
  for (const auto* x : {&p.W_enc, &p.b_enc, &p.W_dec, &p.b_dec})
    out.push_back(x->to(t).detach().requires_grad_());
  return out;
}

double rel(const at::Tensor& a, const at::Tensor& ref) {
  return max_abs_diff(a, ref) / (1e-12 + ref.abs().max().item<double>());
}

enum class Penalty { L1, L1AndPre, DecoderNormL1 };

// mse + c·Σz/B (+ q·Σpre²), or mse + c·Σ_j (Σ_b z_bj)‖W_dec_j‖/B, through sae_math::relu_sae in
// float32, against the same formula written with plain ATen ops in float64.
double relu_step_vs_reference(Penalty penalty) {
  const bool with_pre = penalty == Penalty::L1AndPre;
  const Params p = random_params(5);
  at::manual_seed(6);
  const at::Tensor x = at::randn({kBatch, kDin});
  const double c = 0.37, q = 0.05;

  auto f = leaves(p, at::kFloat);
  auto r = sae_math::relu_sae(x, f[0], f[1], f[2], f[3]);
  auto loss = loss_math::mse(r.reconstruction, x) + c * (penalty == Penalty::DecoderNormL1
                                                             ? loss_math::l1_decoder_norm(r.latents, f[2])
                                                             : loss_math::l1(r.latents));
  if (with_pre) loss = loss + q * r.pre_activations.pow(2).sum();
  loss.backward();

  auto d = leaves(p, at::kDouble);
  const at::Tensor xd = x.to(at::kDouble);
  auto pre = at::matmul(xd - d[3], d[0]) + d[1];
  auto z = at::relu(pre);
  auto xhat = at::matmul(z, d[2]) + d[3];
  auto ref =
      (xhat - xd).pow(2).sum(-1).mean() +
      c * (penalty == Penalty::DecoderNormL1 ? (z.abs().sum(0) * d[2].norm(2, {1})).sum() : z.abs().sum()) /
          double(kBatch);
  if (with_pre) ref = ref + q * pre.pow(2).sum();
  ref.backward();

  double worst = std::max(rel(r.latents, z), rel(r.reconstruction, xhat));
  worst = std::max(worst, std::abs(loss.item<double>() - ref.item<double>()) / ref.item<double>());
  for (int i = 0; i < 4; ++i) worst = std::max(worst, rel(f[i].grad(), d[i].grad()));
  return worst;
}

TEST(SaeFusedCpu, ReluSaeStepMatchesFloat64Reference) {
  const double d = relu_step_vs_reference(Penalty::L1);
  std::printf("fused relu step (mse + l1) float32 vs float64 reference: max relative diff = %.3g\n", d);
  EXPECT_LT(d, 2e-5);
}

TEST(SaeFusedCpu, ReluSaeStepWithAPreActivationLossMatchesFloat64Reference) {
  const double d = relu_step_vs_reference(Penalty::L1AndPre);
  std::printf("fused relu step (mse + l1 + pre²) float32 vs float64 reference: max relative diff = %.3g\n",
              d);
  EXPECT_LT(d, 2e-5);
}

// Anthropic's April 2024 penalty: the gradient reaching the ReLU node is the same row of decoder
// norms for every input, which the fused backward adds in its masking pass.
TEST(SaeFusedCpu, ReluSaeStepWithDecoderNormL1MatchesFloat64Reference) {
  const double d = relu_step_vs_reference(Penalty::DecoderNormL1);
  std::printf(
      "fused relu step (mse + decoder-norm l1) float32 vs float64 reference: max relative diff = %.3g\n", d);
  EXPECT_LT(d, 2e-5);
}

TEST(SaeFusedCpu, L1SumsNonNegativeLatentsAndFallsBackOnNegativeOnes) {
  at::manual_seed(8);
  const at::Tensor z = at::relu(at::randn({kBatch, kDsae}));
  const double want = z.to(at::kDouble).sum().item<double>() / double(kBatch);
  const double got = loss_math::l1(z).item<double>();
  std::printf("l1 of non-negative latents: %.9g, float64 reference %.9g\n", got, want);
  EXPECT_NEAR(got, want, 1e-6 * want);

  // One negative entry: Σ|z|, and the gradient is the sign (0 at 0), not 1 everywhere.
  at::Tensor m = z.clone();
  m.index_put_({5, 7}, -2.5f);
  const at::Tensor leaf = m.detach().requires_grad_();
  auto l = loss_math::l1(leaf);
  l.backward();
  EXPECT_NEAR(l.item<double>(), m.to(at::kDouble).abs().sum().item<double>() / double(kBatch), 1e-6 * want);
  EXPECT_FLOAT_EQ(leaf.grad()[5][7].item<float>(), -1.0f / float(kBatch));
  EXPECT_TRUE(at::equal(leaf.grad(), at::sgn(m) / double(kBatch)));
}

TEST(SaeFusedCpu, FireCountsCountNonZerosPerColumn) {
  at::manual_seed(9);
  at::Tensor z = at::relu(at::randn({kBatch, kDsae}));
  z.index_put_({at::indexing::Slice(), 3}, 0.0f);   // never fires
  z.index_put_({at::indexing::Slice(), 4}, -1.0f);  // negative values still count as firing
  const at::Tensor got = fire_counts(z);
  EXPECT_EQ(got.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(got, z.ne(0).to(at::kLong).sum(0)));
  EXPECT_EQ(got[3].item<std::int64_t>(), 0);
  EXPECT_EQ(got[4].item<std::int64_t>(), kBatch);
}

TEST(SaeFusedCpu, DecoderGradientProjectionRemovesTheParallelPart) {
  at::manual_seed(10);
  const at::Tensor W = at::randn({kDsae, kDin});
  at::Tensor g = at::randn({kDsae, kDin});
  const at::Tensor Wd = W.to(at::kDouble), gd = g.to(at::kDouble);
  const at::Tensor want = gd - (gd * Wd).sum(1, true) / (Wd * Wd).sum(1, true) * Wd;
  sae_math::project_out_row_parallel(W, g);
  const double d = rel(g, want);
  const double along = ((g.to(at::kDouble) * Wd).sum(1).abs() / Wd.norm(2, 1)).max().item<double>();
  std::printf("decoder-gradient projection vs float64: max relative diff = %.3g, max |g·ŵ| after = %.3g\n", d,
              along);
  EXPECT_LT(d, 1e-5);
  EXPECT_LT(along, 1e-4);
}

// The same weights, input and step on one thread and on two: every kernel sums in fixed blocks, so
// the bits must agree (a resumed run may use another thread count).
TEST(SaeFusedCpu, TrainingStepGivesTheSameBitsOnOneAndTwoThreads) {
  const int before = at::get_num_threads();
  std::vector<std::vector<at::Tensor>> grads;
  std::vector<at::Tensor> outs;
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    auto sae = make_sae("relu_l1", {{"d_in", kDin}, {"d_sae", kDsae}}, 4);
    auto mse = make_loss("mse");
    auto l1 = make_loss("l1", {{"coefficient", 0.5}});
    at::manual_seed(12);
    const at::Tensor x = at::randn({kBatch, kDin});
    auto out = sae->forward(x);
    const at::Tensor dead = at::zeros({kDsae}, at::kBool);
    LossContext ctx{x, out, *sae, dead, TrainProgress{1, 2}};
    (mse->compute(ctx) + l1->compute(ctx)).backward();
    sae->before_optimizer_step();
    std::vector<at::Tensor> g;
    for (const auto& p : sae->parameters()) g.push_back(p.grad().clone());
    g.push_back(fire_counts(out.latents));
    grads.push_back(g);
    outs.push_back(out.reconstruction.detach().clone());
  }
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(outs[0], outs[1]));
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_TRUE(at::equal(grads[0][i], grads[1][i])) << i;
}

}  // namespace
}  // namespace saelab::test
