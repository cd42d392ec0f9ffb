// Gradients against central finite differences in double precision: the fused standard SAE with
// every loss, the sparse TopK/BatchTopK paths, auxk, and JumpReLU's straight-through estimator
// as defined (rectangle kernel = central difference with step bandwidth/2).
#include <functional>

#include "saelab/sae/loss_math.hpp"
#include "saelab/sae/math.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

struct Setup {
  std::shared_ptr<SaeArchitecture> sae;
  at::Tensor x;
  at::Tensor dead;
};

Setup small_sae(const std::string& arch, Values extra = {}) {
  Values v{{"d_in", std::int64_t(5)}, {"d_sae", std::int64_t(8)}};
  for (auto& kv : extra) v[kv.first] = kv.second;
  Setup s;
  s.sae = make_sae(arch, v, 3);
  s.sae->to(at::kDouble);
  at::manual_seed(11);
  {
    at::NoGradGuard ng;
    auto st = s.sae->state();
    st["b_dec"].normal_().mul_(0.3);
    st["b_enc"].normal_().mul_(0.3);
  }
  s.x = at::randn({6, 5}, at::kDouble);
  s.dead = at::zeros({8}, at::kBool);
  s.dead.index_fill_(0, at::tensor({1, 4, 6}, at::kLong), true);
  return s;
}

// Loss value of `loss` on a fresh forward (no autograd).
double loss_value(Setup& s, Loss& loss) {
  at::NoGradGuard ng;
  auto out = s.sae->forward(s.x);
  LossContext ctx{s.x, out, *s.sae, s.dead, TrainProgress{1, 2}};
  return loss.compute(ctx).item<double>();
}

// Autograd vs finite differences for every parameter of the SAE under `loss`.
double check_loss_gradients(Setup& s, Loss& loss, double h = 1e-6) {
  s.sae->zero_grad();
  auto out = s.sae->forward(s.x);
  LossContext ctx{s.x, out, *s.sae, s.dead, TrainProgress{1, 2}};
  loss.compute(ctx).backward();
  double worst = 0;
  for (auto& kv : s.sae->named_parameters()) {
    auto fd = numeric_grad([&] { return loss_value(s, loss); }, kv.value(), h);
    auto g = kv.value().grad();
    auto ad = g.defined() ? g : at::zeros_like(fd);
    double d = rel_diff(ad, fd);
    EXPECT_LT(d, 1e-5) << kv.key() << "\nautograd " << ad << "\nfinite diff " << fd;
    worst = std::max(worst, d);
  }
  return worst;
}

// The pre-activations must be away from the ReLU kink, or central differences straddle it.
void expect_no_kink(Setup& s) {
  at::NoGradGuard ng;
  auto pre = s.sae->forward(s.x).pre_activations;
  ASSERT_GT(pre.abs().min().item<double>(), 1e-4);
}

TEST(SaeGradients, StandardSaeWithEveryLossMatchesFiniteDifferences) {
  for (const char* name : {"mse", "normalized_mse", "l1", "l1_decoder_norm"}) {
    auto s = small_sae("relu_l1");
    expect_no_kink(s);
    auto loss = make_loss(name, {{"coefficient", 0.7}});
    double d = check_loss_gradients(s, *loss);
    std::printf("relu_l1 + %s: max relative |autograd - finite diff| = %.3g\n", name, d);
  }
}

TEST(SaeGradients, FusedStandardSaeMatchesPlainAutograd) {
  auto s = small_sae("relu_l1");
  auto st = s.sae->state();
  std::vector<at::Tensor> p;
  for (const char* n : {"W_enc", "b_enc", "W_dec", "b_dec"}) p.push_back(st[n].clone().requires_grad_());
  auto pre = at::matmul(s.x - p[3], p[0]) + p[1];
  auto z = at::relu(pre);
  auto xhat = at::matmul(z, p[2]) + p[3];
  ((xhat - s.x).pow(2).sum() + 0.3 * z.sum() + 0.2 * pre.pow(2).sum()).backward();
  auto out = s.sae->forward(s.x);
  ((out.reconstruction - s.x).pow(2).sum() + 0.3 * out.latents.sum() + 0.2 * out.pre_activations.pow(2).sum())
      .backward();
  double worst = 0;
  const char* names[] = {"W_enc", "b_enc", "W_dec", "b_dec"};
  for (int i = 0; i < 4; ++i)
    worst = std::max(worst, rel_diff(s.sae->named_parameters()[names[i]].grad(), p[i].grad()));
  std::printf("fused relu SAE backward vs plain autograd: max relative diff = %.3g\n", worst);
  EXPECT_LT(worst, 1e-12);
}

TEST(SaeGradients, TopkAndBatchTopkSparsePathsMatchFiniteDifferences) {
  for (const char* arch : {"topk", "batchtopk"}) {
    for (const char* mode : {"sparse", "dense"}) {
      auto s = small_sae(
          arch, {{"k", arch == std::string("topk") ? OptionValue(std::int64_t(3)) : OptionValue(3.0)},
                 {"decode", std::string(mode)}});
      auto loss = make_loss("mse");
      double d = check_loss_gradients(s, *loss);
      std::printf("%s (%s decode) + mse: max relative |autograd - finite diff| = %.3g\n", arch, mode, d);
    }
  }
}

TEST(SaeGradients, AuxkMatchesFiniteDifferencesWithTheResidualHeldFixed) {
  auto s = small_sae("topk", {{"k", std::int64_t(2)}});
  at::Tensor residual;
  {
    at::NoGradGuard ng;
    residual = s.x - s.sae->forward(s.x).reconstruction;
  }
  auto f = [&](bool grad) {
    auto out = s.sae->forward(s.x);
    return loss_math::auxk(out.pre_activations, s.dead, residual, s.sae->decoder_weight(), 2, true).loss;
  };
  s.sae->zero_grad();
  f(true).backward();
  double worst = 0;
  for (auto& kv : s.sae->named_parameters()) {
    auto fd = numeric_grad(
        [&] {
          at::NoGradGuard ng;
          return f(false).item<double>();
        },
        kv.value(), 1e-6);
    auto g = kv.value().grad();
    double d = rel_diff(g.defined() ? g : at::zeros_like(fd), fd);
    EXPECT_LT(d, 1e-5) << kv.key();
    worst = std::max(worst, d);
  }
  std::printf("auxk: max relative |autograd - finite diff| = %.3g\n", worst);
}

TEST(SaeGradients, JumpReluParametersMatchFiniteDifferencesAwayFromThresholds) {
  auto s = small_sae("jumprelu", {{"threshold_init", 0.2}, {"bandwidth", 0.05}});
  {
    at::NoGradGuard ng;
    auto pre = s.sae->forward(s.x).pre_activations;
    ASSERT_GT((pre - 0.2).abs().min().item<double>(), 1e-4);
  }
  auto loss = make_loss("mse");
  s.sae->zero_grad();
  auto out = s.sae->forward(s.x);
  LossContext ctx{s.x, out, *s.sae, s.dead, TrainProgress{}};
  loss->compute(ctx).backward();
  double worst = 0;
  for (const char* name : {"W_enc", "b_enc", "W_dec", "b_dec"}) {
    auto p = s.sae->named_parameters()[name];
    auto fd = numeric_grad([&] { return loss_value(s, *loss); }, p, 1e-6);
    double d = rel_diff(p.grad(), fd);
    EXPECT_LT(d, 1e-5) << name;
    worst = std::max(worst, d);
  }
  std::printf("jumprelu + mse (W, b): max relative |autograd - finite diff| = %.3g\n", worst);
}

// The rectangle-kernel STE of H(pre - θ) is exactly the central difference with step ε/2.
TEST(SaeGradients, HeavisideSteEqualsCentralDifferenceWithHalfBandwidth) {
  const double eps = 0.1;
  auto pre = at::tensor({0.31, 0.52, 0.27, 0.9, 0.12, 0.38}, at::kDouble).view({2, 3});
  auto theta = at::tensor({0.3, 0.5, 0.6}, at::kDouble).requires_grad_();
  auto gout = at::tensor({1.0, -2.0, 0.5, 3.0, 1.5, -1.0}, at::kDouble).view({2, 3});
  (sae_math::heaviside_ste(pre, theta, eps) * gout).sum().backward();
  auto fd = numeric_grad(
      [&] {
        at::NoGradGuard ng;
        return (sae_math::heaviside_ste(pre, theta, eps) * gout).sum().item<double>();
      },
      theta, eps / 2);
  double d = max_abs_diff(theta.grad(), fd);
  std::printf("heaviside STE vs central difference (h = bandwidth/2): max diff = %.3g\n", d);
  EXPECT_LT(d, 1e-12);
  EXPECT_NE(theta.grad().abs().sum().item<double>(), 0.0);  // some entries are in the window
}

// JumpReLU's θ-gradient uses θ where the central difference (step ε/2) has pre: within the
// window |pre - θ| < ε/2, so they differ by at most (1/2) Σ |g| over window entries.
TEST(SaeGradients, JumpReluThresholdSteIsTheCentralDifferenceUpToTheWindow) {
  const double eps = 0.1;
  auto pre = at::tensor({0.31, 0.52, 0.27, 0.9, 0.12, 0.58}, at::kDouble).view({2, 3});
  auto theta = at::tensor({0.3, 0.5, 0.6}, at::kDouble).requires_grad_();
  auto gout = at::tensor({1.0, -2.0, 0.5, 3.0, 1.5, -1.0}, at::kDouble).view({2, 3});
  (sae_math::jumprelu(pre, theta, eps) * gout).sum().backward();
  // Hand value: -(θ/ε) Σ_b 1[|pre - θ| < ε/2] g.
  auto in_window = ((pre - theta.detach()).abs() < eps / 2).to(at::kDouble);
  auto expected = -(theta.detach() / eps) * (in_window * gout).sum(0);
  EXPECT_LT(max_abs_diff(theta.grad(), expected), 1e-12);
  auto fd = numeric_grad(
      [&] {
        at::NoGradGuard ng;
        return (sae_math::jumprelu(pre, theta, eps) * gout).sum().item<double>();
      },
      theta, eps / 2);
  auto bound = 0.5 * (in_window * gout.abs()).sum(0);
  for (std::int64_t i = 0; i < 3; ++i) {
    std::printf("jumprelu θ[%ld] STE vs central difference: |diff| = %.3g (bound %.3g)\n", i,
                (theta.grad()[i] - fd[i]).abs().item<double>(), bound[i].item<double>());
  }
  EXPECT_TRUE(((theta.grad() - fd).abs() <= bound + 1e-12).all().item<bool>());
  // Gradient w.r.t. pre is H(pre - θ) g.
  auto p = pre.clone().requires_grad_();
  (sae_math::jumprelu(p, theta.detach(), eps) * gout).sum().backward();
  EXPECT_LT(max_abs_diff(p.grad(), (pre > theta.detach()).to(at::kDouble) * gout), 1e-15);
}

// The plugin trains log θ: its gradient under the l0 loss is θ times the STE gradient w.r.t. θ.
TEST(SaeGradients, JumpReluL0TrainsLogThresholdThroughTheSte) {
  const double eps = 0.5;
  auto s = small_sae("jumprelu", {{"threshold_init", 0.3}, {"bandwidth", eps}});
  auto loss = make_loss("l0", {{"coefficient", 2.0}});
  s.sae->zero_grad();
  auto out = s.sae->forward(s.x);
  LossContext ctx{s.x, out, *s.sae, s.dead, TrainProgress{}};
  loss->compute(ctx).backward();
  auto pre = out.pre_activations.detach();
  auto theta = s.sae->state()["threshold"];
  auto in_window = ((pre - theta).abs() < eps / 2).to(at::kDouble);
  auto expected = theta * (-(1.0 / eps) * in_window.sum(0)) * (2.0 / double(s.x.size(0)));
  auto g = s.sae->named_parameters()["log_threshold"].grad();
  EXPECT_LT(max_abs_diff(g, expected), 1e-12) << g << expected;
  EXPECT_NE(g.abs().sum().item<double>(), 0.0);
  // The L0 estimate itself is the number of active latents.
  EXPECT_TRUE(out.l0_estimate.detach().equal((out.latents != 0).sum(1).to(at::kDouble)));
  // No L0 gradient reaches the encoder (it trains θ only).
  auto gW = s.sae->named_parameters()["W_enc"].grad();
  EXPECT_TRUE(!gW.defined() || gW.abs().max().item<double>() == 0.0);
}

TEST(SaeGradients, L1AbsSumUsesTheSignForMixedSigns) {
  auto z = at::tensor({0.5, -1.5, 2.0, -0.25}, at::kDouble).view({2, 2}).requires_grad_();
  loss_math::l1(z).backward();
  auto fd = numeric_grad(
      [&] {
        at::NoGradGuard ng;
        return loss_math::l1(z).item<double>();
      },
      z, 1e-6);
  EXPECT_LT(max_abs_diff(z.grad(), fd), 1e-9);
  EXPECT_NEAR(loss_math::l1(z).item<double>(), (0.5 + 1.5 + 2.0 + 0.25) / 2, 1e-15);
}

TEST(SaeGradients, GeometricMedianSatisfiesTheOptimalityCondition) {
  at::manual_seed(5);
  auto x = at::randn({41, 3}, at::kDouble);
  x.slice(0, 0, 5).mul_(30);  // outliers pull the mean, not the median
  auto m = sae_math::geometric_median(x, 1000, 1e-12);
  // At the geometric median the unit vectors towards the points sum to zero.
  auto u = x - m;
  auto s = (u / u.norm(2, {1}, true)).sum(0);
  std::printf("geometric median: |Σ unit vectors| = %.3g (mean is off by %.3g)\n", s.norm().item<double>(),
              (x.mean(0) - m).norm().item<double>());
  EXPECT_LT(s.norm().item<double>(), 1e-6);
  // One dimension: the median of an odd sample.
  auto line = at::tensor({0.0, 1.0, 2.5, 3.0, 100.0}, at::kDouble).view({5, 1});
  EXPECT_NEAR(sae_math::geometric_median(line, 5000, 1e-14).item<double>(), 2.5, 1e-3);
}

}  // namespace
}  // namespace saelab::test
