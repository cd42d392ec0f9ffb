// p-annealing: the Lp formula against hand values and finite differences, the schedule and the
// adaptive coefficient against a hand simulation of dictionary_learning's PAnnealTrainer, and the
// loss state's round trip.
#include <cmath>

#include "saelab/sae/loss_math.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

at::Tensor latents() {
  // Zeros included: z^p has an infinite slope there for p < 1.
  return at::tensor({0.0, 0.5, 2.0, 0.0, 1.5, 0.25, 3.0, 0.0, 0.0}, at::kDouble).view({3, 3});
}

TEST(PAnneal, LpSparsityMatchesHandValuesAndFiniteDifferences) {
  auto z = latents();
  for (bool root : {true, false}) {
    for (double p : {1.0, 0.6}) {
      double hand = 0;
      for (std::int64_t b = 0; b < 3; ++b) {
        double s = 0;
        for (std::int64_t i = 0; i < 3; ++i) {
          const double v = z[b][i].item<double>();
          if (v > 0) s += std::pow(v, p);
        }
        hand += (root ? std::pow(s, 1.0 / p) : s) / 3.0;
      }
      auto zz = z.clone().requires_grad_();
      auto value = loss_math::lp_sparsity(zz, p, root);
      EXPECT_NEAR(value.item<double>(), hand, 1e-12) << "p " << p << " root " << root;
      value.backward();
      auto fd = numeric_grad(
          [&] {
            at::NoGradGuard ng;
            return loss_math::lp_sparsity(zz, p, root).item<double>();
          },
          zz, 1e-7);
      auto active = z > 0;
      const double d = max_abs_diff(zz.grad().masked_select(active), fd.masked_select(active));
      std::printf("lp_sparsity p = %.1f %s: value %.6f (hand %.6f), gradient max |autograd - fd| = %.3g\n", p,
                  root ? "lp" : "lp^p", value.item<double>(), hand, d);
      EXPECT_LT(d, 1e-6);
      EXPECT_TRUE(at::isfinite(zz.grad()).all().item<bool>());
      EXPECT_EQ(zz.grad().masked_select(~active).abs().max().item<double>(), 0.0) << "no gradient at z = 0";
    }
  }
}

struct Driver {
  std::shared_ptr<Loss> loss;
  at::Tensor x = at::zeros({3, 4}, at::kDouble), dead = at::zeros({3}, at::kBool);
  std::shared_ptr<SaeArchitecture> sae =
      make_sae("relu_l1", {{"d_in", std::int64_t(4)}, {"d_sae", std::int64_t(3)}});

  double step(const at::Tensor& z, std::int64_t step, std::int64_t total) {
    SaeOutput out;
    out.latents = z;
    LossContext ctx{x, out, *sae, dead, TrainProgress{step, total}};
    const double v = loss->compute(ctx).item<double>();
    loss->end_step(loss->step_sums(), 1, TrainProgress{step, total});  // as the trainer does
    return v;
  }
};

Values schedule_options() {
  return {{"coefficient", 2.0},
          {"warmup_fraction", 0.0},
          {"p_start", 1.0},
          {"p_end", 0.4},
          {"anneal_start", 0.25},
          {"anneal_end", 1.0},
          {"updates", std::int64_t(4)},
          {"queue_length", std::int64_t(3)}};
}

// 20 steps, updates at steps 5, 10, 15 (and 20, past the end: dictionary_learning never reaches p_end
// when anneal_end is the last step) to p = 1, 0.8, 0.6. With the same latents every step the adapted
// coefficient keeps the penalty exactly where it started: α₀ L1 = α_p Lp.
TEST(PAnneal, ScheduleAndAdaptiveCoefficientFollowTheHandSimulation) {
  Driver d;
  d.loss = make_loss("lp_anneal", schedule_options());
  auto z = latents();
  const double l1 = loss_math::lp_sparsity(z, 1.0, true).item<double>();
  std::vector<double> ps;
  double worst = 0;
  for (std::int64_t s = 0; s < 20; ++s) {
    const double v = d.step(z, s, 20);
    const auto m = d.loss->metrics();
    ps.push_back(m.at("p"));
    worst = std::max(worst, std::abs(v - 2.0 * l1));
    // coefficient = α₀ L1 / Lp at the p in use
    const double lp = loss_math::lp_sparsity(z, m.at("p"), true).item<double>();
    EXPECT_NEAR(m.at("coefficient") * lp, 2.0 * l1, 1e-9) << "step " << s;
  }
  // The update at a step takes effect from the next one.
  for (int s = 0; s < 20; ++s) EXPECT_NEAR(ps[s], s <= 10 ? 1.0 : s <= 15 ? 0.8 : 0.6, 1e-12) << "step " << s;
  std::printf("lp_anneal: p at steps 10/11/16 = %.2f/%.2f/%.2f; penalty stays α₀·L1 = %.6f within %.3g\n",
              ps[10], ps[11], ps[16], 2.0 * l1, worst);
  EXPECT_LT(worst, 1e-9);
}

TEST(PAnneal, StateRoundTripContinuesBitForBit) {
  at::manual_seed(3);
  std::vector<at::Tensor> zs;
  for (int s = 0; s < 20; ++s) zs.push_back(at::relu(at::randn({3, 3}, at::kDouble)));
  Driver a, b;
  a.loss = make_loss("lp_anneal", schedule_options());
  std::vector<double> uninterrupted;
  for (int s = 0; s < 20; ++s) uninterrupted.push_back(a.step(zs[s], s, 20));
  Driver first, second;
  first.loss = make_loss("lp_anneal", schedule_options());
  for (int s = 0; s < 12; ++s) EXPECT_EQ(first.step(zs[s], s, 20), uninterrupted[s]);
  const auto saved = nlohmann::json::parse(first.loss->state().dump());
  second.loss = make_loss("lp_anneal", schedule_options());
  second.loss->load_state(saved, "trainer.json");
  for (int s = 12; s < 20; ++s) EXPECT_EQ(second.step(zs[s], s, 20), uninterrupted[s]) << "step " << s;

  auto broken = saved;
  broken["p"] = -1;
  expect_error_contains([&] { second.loss->load_state(broken, "ckpt/trainer.json"); },
                        "ckpt/trainer.json: lp_anneal state has p = -1");
  broken = saved;
  broken["queue"] = nlohmann::json::array({1, 2, 3, 4});
  expect_error_contains([&] { second.loss->load_state(broken, "t.json"); },
                        "at most 3 [current, next] pairs");
  broken = saved;
  broken.erase("alpha");
  expect_error_contains([&] { second.loss->load_state(broken, "t.json"); },
                        "key 'alpha' must be a finite number");
}

TEST(PAnneal, OptionsAreChecked) {
  auto bad = [](Values v, const char* part) {
    expect_error_contains([&] { make_loss("lp_anneal", v); }, part);
  };
  bad({{"p_end", 1.5}}, "p_end = 1.5 must be in (0, p_start = 1]");
  bad({{"anneal_start", 0.8}, {"anneal_end", 0.5}}, "must satisfy 0 ≤ anneal_start ≤ anneal_end ≤ 1");
}

}  // namespace
}  // namespace saelab::test
