// Gated and Matryoshka BatchTopK SAEs against direct formulas (written out here, from the papers
// and SAELens's inference code) and central finite differences in double precision.
#include <set>

#include "saelab/sae/loss_math.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

struct Case {
  std::shared_ptr<SaeArchitecture> sae;
  at::Tensor x;     // [6, 5]
  at::Tensor dead;  // [8]
};

Case make_case(const std::string& arch, Values extra = {}, std::uint64_t seed = 3) {
  Values v{{"d_in", std::int64_t(5)}, {"d_sae", std::int64_t(8)}};
  for (auto& kv : extra) v[kv.first] = kv.second;
  Case c;
  c.sae = make_sae(arch, v, seed);
  c.sae->to(at::kDouble);
  at::manual_seed(11);
  {
    at::NoGradGuard ng;
    for (auto& p : c.sae->named_parameters())
      if (p.value().dim() == 1) p.value().normal_().mul_(0.3);  // every bias (and r_mag)
  }
  c.x = at::randn({6, 5}, at::kDouble);
  c.dead = at::zeros({8}, at::kBool);
  c.dead.index_fill_(0, at::tensor({1, 4, 6}, at::kLong), true);
  return c;
}

double total_loss(Case& c, const std::vector<std::shared_ptr<Loss>>& losses) {
  auto out = c.sae->forward(c.x);
  LossContext ctx{c.x, out, *c.sae, c.dead, TrainProgress{1, 2}};
  double sum = 0;
  for (auto& l : losses) sum += l->compute(ctx).item<double>();
  return sum;
}

// Autograd of the summed losses against central differences, every parameter but `frozen` (those a
// loss deliberately passes no gradient to); the worst relative difference.
double check_gradients(Case& c, const std::vector<std::shared_ptr<Loss>>& losses,
                       const std::set<std::string>& frozen = {}) {
  c.sae->zero_grad();
  auto out = c.sae->forward(c.x);
  LossContext ctx{c.x, out, *c.sae, c.dead, TrainProgress{1, 2}};
  at::Tensor total;
  for (auto& l : losses) total = total.defined() ? total + l->compute(ctx) : l->compute(ctx);
  total.backward();
  double worst = 0;
  for (auto& kv : c.sae->named_parameters()) {
    if (frozen.count(kv.key())) continue;
    auto fd = numeric_grad(
        [&] {
          at::NoGradGuard ng;
          return total_loss(c, losses);
        },
        kv.value(), 1e-6);
    auto g = kv.value().grad();
    const double d = rel_diff(g.defined() ? g : at::zeros_like(fd), fd);
    EXPECT_LT(d, 1e-5) << kv.key() << "\nautograd " << g << "\nfinite diff " << fd;
    worst = std::max(worst, d);
  }
  return worst;
}

// ---- gated --------------------------------------------------------------------------------------

struct GatedDirect {
  at::Tensor gate_pre, mag_pre, z, xhat;
};

// SAELens GatedSAE.encode/decode, written out: the magnitude path multiplies W_enc by exp(r_mag).
GatedDirect gated_direct(const TensorMap& p, const at::Tensor& x) {
  GatedDirect d;
  auto xc = x - p.at("b_dec");
  d.gate_pre = at::matmul(xc, p.at("W_enc")) + p.at("b_gate");
  d.mag_pre = at::matmul(xc, p.at("W_enc") * p.at("r_mag").exp()) + p.at("b_mag");
  d.z = (d.gate_pre > 0).to(x.scalar_type()) * at::relu(d.mag_pre);
  d.xhat = at::matmul(d.z, p.at("W_dec")) + p.at("b_dec");
  return d;
}

TEST(GatedSae, ForwardAndEncodeMatchTheDirectFormula) {
  auto c = make_case("gated");
  at::NoGradGuard ng;
  const TensorMap st = c.sae->state();
  ASSERT_EQ(st.count("b_enc"), 0u) << "a gated SAE saves b_gate, b_mag and r_mag, not b_enc";
  for (const char* n : {"W_enc", "b_gate", "b_mag", "r_mag", "W_dec", "b_dec"})
    ASSERT_EQ(st.count(n), 1u) << n;
  auto d = gated_direct(st, c.x);
  c.sae->train();
  auto out = c.sae->forward(c.x);
  const double dz = max_abs_diff(out.latents, d.z), dx = max_abs_diff(out.reconstruction, d.xhat);
  const double de = max_abs_diff(c.sae->encode(c.x), d.z);
  const double dg = max_abs_diff(out.gate_activations, at::relu(d.gate_pre));
  const double dr = max_abs_diff(out.gate_reconstruction,
                                 at::matmul(at::relu(d.gate_pre), st.at("W_dec")) + st.at("b_dec"));
  std::printf("gated vs direct formula: max |diff| z %.3g, x̂ %.3g, encode %.3g, gate %.3g, gate x̂ %.3g\n", dz,
              dx, de, dg, dr);
  for (double v : {dz, dx, de, dg, dr}) EXPECT_LT(v, 1e-12);
  EXPECT_GT((out.latents != 0).sum().item<std::int64_t>(), 0);
  EXPECT_GT(((d.gate_pre > 0) & (d.mag_pre <= 0)).sum().item<std::int64_t>() +
                ((d.gate_pre <= 0) & (d.mag_pre > 0)).sum().item<std::int64_t>(),
            0)
      << "the case must have latents where the two paths disagree";
  c.sae->eval();
  EXPECT_FALSE(c.sae->forward(c.x).gate_activations.defined()) << "the gate outputs are for training only";
}

TEST(GatedSae, EveryLossMatchesFiniteDifferences) {
  auto c = make_case("gated");
  {
    at::NoGradGuard ng;
    auto d = gated_direct(c.sae->state(), c.x);
    ASSERT_GT(d.gate_pre.abs().min().item<double>(), 1e-4) << "central differences would straddle the gate";
    ASSERT_GT(d.mag_pre.abs().min().item<double>(), 1e-4);
  }
  c.sae->train();
  for (const char* name : {"mse", "gate_l1"}) {
    const double d = check_gradients(c, {make_loss(name, {{"coefficient", 0.7}})});
    std::printf("gated + %s: max relative |autograd - finite diff| = %.3g\n", name, d);
  }
  // gate_aux reconstructs through a frozen decoder: W_dec and b_dec get no gradient from it (b_dec
  // only through the encoder input; see the next test), the rest does.
  const double d = check_gradients(c, {make_loss("gate_aux", {{"coefficient", 0.7}})}, {"W_dec", "b_dec"});
  std::printf(
      "gated + gate_aux (W_enc, b_gate, b_mag, r_mag): max relative |autograd - finite diff| = %.3g\n", d);
}

// The auxiliary term trains the gate (W_enc, b_gate, b_dec through the input) but not the decoder:
// the paper reconstructs through a frozen copy.
TEST(GatedSae, AuxiliaryLossSendsNoGradientToTheDecoder) {
  auto c = make_case("gated");
  c.sae->train();
  c.sae->zero_grad();
  auto out = c.sae->forward(c.x);
  LossContext ctx{c.x, out, *c.sae, c.dead, TrainProgress{1, 2}};
  make_loss("gate_aux")->compute(ctx).backward();
  auto params = c.sae->named_parameters();
  auto gW = params["W_dec"].grad();
  EXPECT_TRUE(!gW.defined() || gW.abs().max().item<double>() == 0.0);
  EXPECT_GT(params["W_enc"].grad().abs().max().item<double>(), 0.0);
  EXPECT_GT(params["b_enc"].grad().abs().max().item<double>(), 0.0);  // b_gate
  // b_dec gets a gradient only through the encoder input x - b_dec, which is -W_enc Σ_b ∂/∂π_gate.
  auto pi_grad_sum = params["b_enc"].grad();  // ∂L/∂b_gate = Σ_b ∂L/∂π_gate
  EXPECT_LT(max_abs_diff(params["b_dec"].grad(), -at::matmul(params["W_enc"].detach(), pi_grad_sum)), 1e-12);
}

TEST(GatedSae, GateLossesNameTheArchitectureTheyNeed) {
  auto c = make_case("relu_l1");
  auto out = c.sae->forward(c.x);
  LossContext ctx{c.x, out, *c.sae, c.dead, TrainProgress{}};
  for (const char* name : {"gate_l1", "gate_aux"}) {
    try {
      make_loss(name)->compute(ctx);
      ADD_FAILURE() << name << " accepted a standard SAE";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("'standard' does not have; use it with sae: gated"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(GatedSae, StateRoundTripsAndRejectsBadTensors) {
  auto a = make_case("gated", {}, 3), b = make_case("gated", {}, 9);
  b.sae->load_state(a.sae->state());
  at::NoGradGuard ng;
  EXPECT_EQ(max_abs_diff(b.sae->encode(a.x), a.sae->encode(a.x)), 0.0);
  TensorMap with_b_enc = a.sae->state();
  with_b_enc["b_enc"] = with_b_enc.at("b_gate");
  expect_error_contains([&] { b.sae->load_state(with_b_enc); }, "unexpected tensor 'b_enc'");
  TensorMap huge = a.sae->state();
  huge["r_mag"] = at::full({8}, 100.0, at::kDouble);
  expect_error_contains([&] { b.sae->load_state(huge); }, "exp(r_mag) overflows");
  TensorMap missing = a.sae->state();
  missing.erase("b_mag");
  expect_error_contains([&] { b.sae->load_state(missing); }, "tensor 'b_mag' is missing");
}

// Training sees f·x; after folding, the SAE on raw x gives the same latents and x̂ / f.
TEST(GatedSae, FoldingTheInputScaleKeepsLatentsAndScalesTheReconstruction) {
  auto c = make_case("gated");
  at::NoGradGuard ng;
  const double f = 2.5;
  auto z_scaled = c.sae->encode(c.x * f);
  auto xhat_scaled = c.sae->forward(c.x * f).reconstruction;
  c.sae->fold_input_scale(f);
  EXPECT_LT(max_abs_diff(c.sae->encode(c.x), z_scaled), 1e-12);
  EXPECT_LT(max_abs_diff(c.sae->forward(c.x).reconstruction, xhat_scaled / f), 1e-12);
}

// ---- Matryoshka BatchTopK -------------------------------------------------------------------------

Values matryoshka(const char* decode) {
  return {
      {"k", 3.0}, {"matryoshka_widths", std::vector<std::string>{"2", "5"}}, {"decode", std::string(decode)}};
}

// Prefix m's reconstruction is Σ_{i<m} z_i W_dec,i + b_dec, from the training latents.
TEST(MatryoshkaSae, PrefixReconstructionsMatchTheDirectFormula) {
  for (const char* mode : {"sparse", "dense"}) {
    auto c = make_case("matryoshka_batchtopk", matryoshka(mode));
    c.sae->train();
    at::NoGradGuard ng;
    auto out = c.sae->forward(c.x);
    auto st = c.sae->state();
    ASSERT_EQ(out.prefix_reconstructions.size(), 2u) << "inner prefixes 2 and 5 (8 = d_sae is the full one)";
    double worst = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      const std::int64_t m = i == 0 ? 2 : 5;
      auto direct = at::matmul(out.latents.narrow(1, 0, m), st.at("W_dec").narrow(0, 0, m)) + st.at("b_dec");
      worst = std::max(worst, max_abs_diff(out.prefix_reconstructions[i], direct));
    }
    EXPECT_LT(max_abs_diff(out.reconstruction, at::matmul(out.latents, st.at("W_dec")) + st.at("b_dec")),
              1e-12);
    std::printf("matryoshka (%s decode) prefixes vs direct formula: max |diff| = %.3g\n", mode, worst);
    EXPECT_LT(worst, 1e-12);
    EXPECT_EQ(c.sae->extra_config()["matryoshka_widths"], nlohmann::json({2, 5, 8}));
    EXPECT_EQ(c.sae->inference_architecture(), "jumprelu");
  }
}

TEST(MatryoshkaSae, LossesMatchFiniteDifferences) {
  for (const char* mode : {"sparse", "dense"}) {
    auto c = make_case("matryoshka_batchtopk", matryoshka(mode));
    c.sae->train();
    // (auxk holds the residual fixed, so it has its own test in test_sae_gradients.cpp.)
    const double d = check_gradients(c, {make_loss("mse"), make_loss("matryoshka", {{"coefficient", 0.6}})});
    std::printf(
        "matryoshka_batchtopk (%s decode) + mse + matryoshka: max relative |autograd - finite diff| = "
        "%.3g\n",
        mode, d);
  }
}

// The matryoshka term's value is the hand sum of the inner prefixes' squared errors.
TEST(MatryoshkaSae, LossIsTheSumOfThePrefixErrors) {
  auto c = make_case("matryoshka_batchtopk", matryoshka("dense"));
  c.sae->train();
  at::NoGradGuard ng;
  auto out = c.sae->forward(c.x);
  LossContext ctx{c.x, out, *c.sae, c.dead, TrainProgress{1, 2}};
  double hand = 0;
  for (const auto& xhat : out.prefix_reconstructions) {
    auto e = (xhat - c.x).pow(2);
    for (std::int64_t b = 0; b < e.size(0); ++b) hand += e[b].sum().item<double>() / double(e.size(0));
  }
  EXPECT_NEAR(make_loss("matryoshka", {{"coefficient", 1.0}})->compute(ctx).item<double>(), hand, 1e-12);
  auto plain = make_case("batchtopk", {{"k", 3.0}});
  auto pout = plain.sae->forward(plain.x);
  LossContext pctx{plain.x, pout, *plain.sae, plain.dead, TrainProgress{}};
  expect_error_contains([&] { make_loss("matryoshka")->compute(pctx); },
                        "use it with sae: matryoshka_batchtopk");
}

TEST(MatryoshkaSae, WidthsAreCheckedWithTheirOption) {
  auto bad = [](std::vector<std::string> widths, const char* expected) {
    Values v{
        {"d_in", std::int64_t(5)}, {"d_sae", std::int64_t(8)}, {"k", 3.0}, {"matryoshka_widths", widths}};
    expect_error_contains([&] { make_sae("matryoshka_batchtopk", v); }, expected);
  };
  bad({"4", "2"}, "strictly increasing, but 2 follows 4");
  bad({"9"}, "entry '9' is not an integer in [1, d_sae = 8]");
  bad({"two"}, "entry 'two' is not an integer");
  bad({}, "give at least one prefix size below d_sae = 8");
  bad({"8"}, "give at least one prefix size below d_sae = 8");
}

}  // namespace
}  // namespace saelab::test
