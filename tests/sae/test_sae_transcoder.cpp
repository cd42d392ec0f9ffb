// The transcoder plugin against its direct formula (SAELens's Transcoder / SkipTranscoder forward)
// and central finite differences in double precision, with a target of another width.
#include "saelab/sae/loss_math.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

struct Tc {
  std::shared_ptr<SaeArchitecture> sae;
  at::Tensor x, y, dead;  // x [6, 5], y [6, 4]
};

Tc make_tc(bool skip) {
  Tc t;
  t.sae = make_sae(
      "transcoder",
      {{"d_in", std::int64_t(5)}, {"d_out", std::int64_t(4)}, {"d_sae", std::int64_t(8)}, {"skip", skip}}, 3);
  t.sae->to(at::kDouble);
  at::manual_seed(12);
  {
    at::NoGradGuard ng;
    for (auto& p : t.sae->named_parameters()) p.value().normal_().mul_(0.4);
  }
  t.x = at::randn({6, 5}, at::kDouble);
  t.y = at::randn({6, 4}, at::kDouble);
  t.dead = at::zeros({8}, at::kBool);
  return t;
}

double loss_of(Tc& t, Loss& loss) {
  auto out = t.sae->forward(t.x);
  LossContext ctx{t.x, out, *t.sae, t.dead, TrainProgress{1, 2}, &t.y};
  return loss.compute(ctx).item<double>();
}

TEST(TranscoderSae, ForwardMatchesTheDirectFormula) {
  for (bool skip : {false, true}) {
    auto t = make_tc(skip);
    at::NoGradGuard ng;
    const auto st = t.sae->state();
    EXPECT_EQ(st.count("W_skip"), skip ? 1u : 0u);
    auto z = at::relu(at::matmul(t.x, st.at("W_enc")) + st.at("b_enc"));  // no b_dec subtraction
    auto y = at::matmul(z, st.at("W_dec")) + st.at("b_dec");
    if (skip) y = y + at::matmul(t.x, st.at("W_skip").t());
    const auto out = t.sae->forward(t.x);
    const double dz = max_abs_diff(out.latents, z), dy = max_abs_diff(out.reconstruction, y);
    std::printf("%s vs direct formula: max |diff| z %.3g, y %.3g\n", skip ? "skip_transcoder" : "transcoder",
                dz, dy);
    EXPECT_LT(dz, 1e-12);
    EXPECT_LT(dy, 1e-12);
    EXPECT_EQ(t.sae->architecture(), skip ? "skip_transcoder" : "transcoder");
    EXPECT_EQ(t.sae->shape().out(), 4);
  }
}

TEST(TranscoderSae, MseAndL1MatchFiniteDifferencesAgainstTheTarget) {
  for (bool skip : {false, true}) {
    auto t = make_tc(skip);
    {
      at::NoGradGuard ng;
      ASSERT_GT(t.sae->forward(t.x).pre_activations.abs().min().item<double>(), 1e-4);
    }
    std::vector<std::shared_ptr<Loss>> losses = {make_loss("mse"), make_loss("l1", {{"coefficient", 0.3}})};
    for (auto& loss : losses) {
      t.sae->zero_grad();
      auto out = t.sae->forward(t.x);
      LossContext ctx{t.x, out, *t.sae, t.dead, TrainProgress{1, 2}, &t.y};
      loss->compute(ctx).backward();
      double worst = 0;
      for (auto& kv : t.sae->named_parameters()) {
        auto fd = numeric_grad(
            [&] {
              at::NoGradGuard ng;
              return loss_of(t, *loss);
            },
            kv.value(), 1e-6);
        auto g = kv.value().grad();
        const double d = rel_diff(g.defined() ? g : at::zeros_like(fd), fd);
        EXPECT_LT(d, 1e-5) << kv.key();
        worst = std::max(worst, d);
      }
      std::printf("%s + %s: max relative |autograd - finite diff| = %.3g\n",
                  skip ? "skip_transcoder" : "transcoder", loss->name().c_str(), worst);
    }
  }
}

// Training saw f·x and g·y; folded, the transcoder on raw x predicts (its scaled prediction) / g.
TEST(TranscoderSae, FoldingBothScalesPredictsRawTargets) {
  auto t = make_tc(true);
  at::NoGradGuard ng;
  const double f = 2.5, g = 0.4;
  const auto scaled = t.sae->forward(t.x * f).reconstruction;
  const auto z = t.sae->encode(t.x * f);
  t.sae->fold_input_scale(f);
  t.sae->fold_output_scale(g);
  EXPECT_LT(max_abs_diff(t.sae->forward(t.x).reconstruction, scaled / g), 1e-12);
  EXPECT_LT(max_abs_diff(t.sae->encode(t.x), z), 1e-12);
  expect_error_contains(
      [&] {
        t.sae->reinitialize_latents(at::zeros({1}, at::kLong), at::ones({1, 5}), 1.0);
      },
      "a transcoder cannot resample dead latents");
}

}  // namespace
}  // namespace saelab::test
