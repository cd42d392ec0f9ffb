// Loss plugins: hand-computed values, non-negativity, exact zeros, schedules and error messages.
#include "saelab/sae/loss_math.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

struct Fixture {
  std::shared_ptr<SaeArchitecture> sae;
  at::Tensor x;
  SaeOutput out;
  at::Tensor dead;
};

Fixture fixture(const std::string& arch, std::int64_t batch = 8) {
  Fixture f;
  Values v{{"d_in", std::int64_t(6)}, {"d_sae", std::int64_t(20)}};
  if (arch == "topk") v["k"] = std::int64_t(3);
  if (arch == "batchtopk") v["k"] = 3.0;
  f.sae = make_sae(arch, v);
  f.x = at::randn({batch, 6});
  f.out = f.sae->forward(f.x);
  f.dead = at::zeros({20}, at::kBool);
  return f;
}

double value(Loss& loss, const Fixture& f, TrainProgress p = {1, 1}) {
  LossContext ctx{f.x, f.out, *f.sae, f.dead, p};
  return loss.compute(ctx).item<double>();
}

TEST(SaeLosses, EveryTermIsNonNegativeOnEveryArchitecture) {
  for (const char* arch : {"relu_l1", "topk", "batchtopk", "jumprelu"}) {
    auto f = fixture(arch);
    f.dead.slice(0, 0, 10).fill_(true);
    for (const char* name : {"mse", "normalized_mse", "l1", "l1_decoder_norm", "auxk"}) {
      auto loss = make_loss(name);
      double v = value(*loss, f);
      EXPECT_GE(v, 0.0) << arch << " " << name;
      EXPECT_TRUE(std::isfinite(v)) << arch << " " << name;
    }
    if (std::string(arch) == "jumprelu") {
      EXPECT_GE(value(*make_loss("l0"), f), 0.0);
    }
  }
}

TEST(SaeLosses, HandComputedValues) {
  auto f = fixture("relu_l1", 2);
  f.x = at::tensor({1.0f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 3.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 6});
  f.out.reconstruction =
      at::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 6});
  // Squared errors per row: 4 + 1 = 5 and 4: mean 4.5.
  EXPECT_NEAR(value(*make_loss("mse"), f), 4.5, 1e-6);
  EXPECT_NEAR(value(*make_loss("mse", {{"coefficient", 2.0}}), f), 9.0, 1e-6);
  // Batch mean (2, 1, 0...): deviations (-1, 1) and (1, -1): Σ = 4. Normalised: 9 / 4.
  EXPECT_NEAR(value(*make_loss("normalized_mse"), f), 9.0 / 4.0, 1e-6);
  f.out.latents = at::zeros({2, 20});
  f.out.latents[0][3] = 2.0;
  f.out.latents[1][3] = 1.0;
  f.out.latents[1][7] = 0.5;
  EXPECT_NEAR(value(*make_loss("l1", {{"coefficient", 1.0}, {"warmup_fraction", 0.0}}), f), 1.75, 1e-6);
  // Decoder rows have unit norm at initialisation, so l1_decoder_norm = l1 there...
  EXPECT_NEAR(value(*make_loss("l1_decoder_norm", {{"coefficient", 1.0}, {"warmup_fraction", 0.0}}), f), 1.75,
              1e-5);
  // ...and scales with a row's norm.
  {
    at::NoGradGuard ng;
    f.sae->decoder_weight()[3].mul_(2.0);
  }
  EXPECT_NEAR(value(*make_loss("l1_decoder_norm", {{"coefficient", 1.0}, {"warmup_fraction", 0.0}}), f),
              (2.0 * 2 + 1.0 * 2 + 0.5) / 2, 1e-5);
}

TEST(SaeLosses, ExactZeros) {
  auto f = fixture("relu_l1");
  f.out.reconstruction = f.x.clone();
  EXPECT_EQ(value(*make_loss("mse"), f), 0.0);
  EXPECT_EQ(value(*make_loss("normalized_mse"), f), 0.0);
  f.out.latents = at::zeros_like(f.out.latents);
  EXPECT_EQ(value(*make_loss("l1"), f), 0.0);
  EXPECT_EQ(value(*make_loss("l1_decoder_norm"), f), 0.0);
  auto t = fixture("topk");
  EXPECT_EQ(value(*make_loss("auxk"), t), 0.0);  // no dead latents
  t.dead[4] = true;
  EXPECT_GT(value(*make_loss("auxk"), t), 0.0);
}

TEST(SaeLosses, WarmupScalesTheCoefficientLinearly) {
  auto f = fixture("relu_l1");
  auto l1 = make_loss("l1", {{"coefficient", 4.0}, {"warmup_fraction", 0.5}});
  double full = value(*l1, f, {100, 100});
  ASSERT_GT(full, 0.0);
  EXPECT_NEAR(value(*l1, f, {25, 100}), full * 0.5, 1e-6 * full);
  EXPECT_EQ(value(*l1, f, {0, 100}), 0.0);
  EXPECT_NEAR(value(*l1, f, {60, 100}), full, 1e-6 * full);
  EXPECT_EQ(l1->name(), "l1");
}

TEST(SaeLosses, AuxkUsesTheTopDeadPreActivations) {
  // Hand check of the formula with one dead latent per row chosen: ê = pre_i W_dec,i.
  auto pre = at::tensor({0.5, -1.0, 2.0, 1.0, 3.0, -2.0}, at::kDouble).view({2, 3});
  auto dead = at::tensor({0, 1, 1}).to(at::kBool);
  auto W = at::tensor({1.0, 0.0, 0.0, 1.0, 1.0, 1.0}, at::kDouble).view({3, 2});
  auto e = at::tensor({1.0, 1.0, 0.0, 2.0}, at::kDouble).view({2, 2});
  // Row 0: dead latents 1 (-1), 2 (2): top is 2 -> ê = (2, 2). Row 1: 1 (3) -> ê = (0, 3).
  auto r = loss_math::auxk(pre, dead, e, W, 1, false);
  EXPECT_EQ(r.num_dead, 2);
  EXPECT_EQ(r.k_aux, 1);
  // |ê - e|²: row 0: 1 + 1 = 2, row 1: 0 + 1 = 1; mean 1.5; scale min(2/1, 1) = 1.
  EXPECT_NEAR(r.loss.item<double>(), 1.5, 1e-12);
  // Normalised: e's deviations from its mean (0.5, 1.5): (0.5,-0.5),(-0.5,0.5): 0.5 per row.
  EXPECT_NEAR(loss_math::auxk(pre, dead, e, W, 1, true).loss.item<double>(), 3.0, 1e-12);
  // k_aux 4 with 2 dead: scale 2/4, both dead latents used.
  auto r4 = loss_math::auxk(pre, dead, e, W, 4, false);
  EXPECT_EQ(r4.k_aux, 2);
  // Row 0: ê = -1·(0,1) + 2·(1,1) = (2, 1): err (1, 0) -> 1. Row 1: 3·(0,1) - 2·(1,1) = (-2, 1):
  // err (-2, -1) -> 5. Mean 3, times 0.5.
  EXPECT_NEAR(r4.loss.item<double>(), 1.5, 1e-12);
}

TEST(SaeLosses, L0OnAnArchitectureWithoutEstimateSaysWhatToUse) {
  auto f = fixture("relu_l1");
  auto msg = error_of([&] { value(*make_loss("l0"), f); });
  EXPECT_NE(msg.find("'standard'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("jumprelu"), std::string::npos) << msg;
}

TEST(SaeLosses, NormalizedMseOnAConstantBatchIsAnError) {
  auto f = fixture("relu_l1", 1);
  auto msg = error_of([&] { value(*make_loss("normalized_mse"), f); });
  EXPECT_NE(msg.find("zero variance"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mse"), std::string::npos) << msg;
}

TEST(SaeLosses, AuxkWithoutDeadMaskIsAnError) {
  auto f = fixture("topk");
  at::Tensor none;
  LossContext ctx{f.x, f.out, *f.sae, none, TrainProgress{}};
  auto msg = error_of([&] { make_loss("auxk")->compute(ctx); });
  EXPECT_NE(msg.find("dead-latent mask"), std::string::npos) << msg;
}

TEST(SaeLosses, NegativeCoefficientIsRejectedWithItsLocation) {
  auto msg = error_of([] { make_loss("l1", {{"coefficient", -1.0}}); });
  EXPECT_NE(msg.find("coefficient"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test.yaml:1:1"), std::string::npos) << msg;
}

}  // namespace
}  // namespace saelab::test
