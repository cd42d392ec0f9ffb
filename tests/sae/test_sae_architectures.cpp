// SAE architecture plugins: shapes, sparsity rules (TopK, BatchTopK), sparse vs dense decode,
// the unit-norm decoder constraint under Adam, and option errors.
#include <torch/optim/adam.h>

#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

const char* kArchs[] = {"relu_l1", "topk", "batchtopk", "jumprelu"};

TEST(SaeArchitectures, ForwardShapesForEveryArchitectureAndBatchSize) {
  for (const char* arch : kArchs) {
    auto sae = make_sae(
        arch, {{"d_in", std::int64_t(12)},
               {"d_sae", std::int64_t(40)},
               {"k", arch == std::string("batchtopk") ? OptionValue(4.0) : OptionValue(std::int64_t(4))}});
    EXPECT_EQ(sae->shape().d_in, 12);
    EXPECT_EQ(sae->shape().d_sae, 40);
    for (std::int64_t B : {1, 7, 64}) {
      SCOPED_TRACE(cat(arch, " batch ", B));
      auto x = at::randn({B, 12});
      auto out = sae->forward(x);
      EXPECT_EQ(out.latents.sizes(), (at::IntArrayRef{B, 40}));
      EXPECT_EQ(out.reconstruction.sizes(), (at::IntArrayRef{B, 12}));
      EXPECT_EQ(out.pre_activations.sizes(), (at::IntArrayRef{B, 40}));
      EXPECT_EQ(out.l0_estimate.defined(), arch == std::string("jumprelu"));
      if (out.l0_estimate.defined()) {
        EXPECT_EQ(out.l0_estimate.sizes(), (at::IntArrayRef{B}));
      }
      EXPECT_EQ(sae->encode(x).sizes(), (at::IntArrayRef{B, 40}));
      EXPECT_EQ(sae->decode(out.latents).sizes(), (at::IntArrayRef{B, 12}));
      EXPECT_GE(out.latents.min().item<double>(), 0.0);
    }
  }
}

TEST(SaeArchitectures, WrongInputWidthNamesBothWidths) {
  auto sae = make_sae("relu_l1", {{"d_in", std::int64_t(12)}, {"d_sae", std::int64_t(40)}});
  auto msg = error_of([&] { sae->forward(at::randn({3, 13})); });
  EXPECT_NE(msg.find("[batch, 12]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 13]"), std::string::npos) << msg;
}

// Reference: z = ReLU((x - b_dec) W_enc + b_enc), x̂ = z W_dec + b_dec, by plain tensor ops.
TEST(SaeArchitectures, StandardForwardMatchesTheFormula) {
  auto sae = make_sae("relu_l1", {{"d_in", std::int64_t(9)}, {"d_sae", std::int64_t(30)}});
  auto s = sae->state();
  at::NoGradGuard ng;
  s["b_dec"].normal_();
  s["b_enc"].normal_();
  auto x = at::randn({5, 9});
  auto out = sae->forward(x);
  auto z = at::relu(at::matmul(x - s["b_dec"], s["W_enc"]) + s["b_enc"]);
  auto xhat = at::matmul(z, s["W_dec"]) + s["b_dec"];
  double d = std::max(max_abs_diff(out.latents, z), max_abs_diff(out.reconstruction, xhat));
  std::printf("standard forward vs formula: max |diff| = %.3g\n", d);
  EXPECT_LT(d, 1e-5);
}

TEST(SaeArchitectures, TopkKeepsExactlyKPerRow) {
  auto sae =
      make_sae("topk", {{"d_in", std::int64_t(16)}, {"d_sae", std::int64_t(64)}, {"k", std::int64_t(5)}});
  {
    at::NoGradGuard ng;
    sae->state()["b_enc"].fill_(10.0);  // every pre-activation positive: k survive the ReLU
  }
  auto x = at::randn({33, 16});
  auto out = sae->forward(x);
  auto nnz = (out.latents != 0).sum(1);
  EXPECT_TRUE((nnz == 5).all().item<bool>()) << nnz;
  // The kept entries are the k largest pre-activations of their row.
  auto kth = std::get<0>(out.pre_activations.topk(5, 1)).select(1, 4).unsqueeze(1);
  EXPECT_TRUE(((out.latents != 0) == (out.pre_activations >= kth)).all().item<bool>());
}

TEST(SaeArchitectures, TopkBreaksTiesTowardsLowerIndices) {
  auto sae =
      make_sae("topk", {{"d_in", std::int64_t(4)}, {"d_sae", std::int64_t(10)}, {"k", std::int64_t(3)}});
  auto st = sae->state();
  {
    at::NoGradGuard ng;
    st["W_enc"].zero_();
    // Pre-activations = b_enc: ties at 2.0 (latents 1, 4, 7, 8) around a clear maximum (latent 5).
    st["b_enc"].copy_(at::tensor({0.5, 2.0, 1.0, 0.0, 2.0, 3.0, 1.0, 2.0, 2.0, -1.0}));
  }
  auto z = sae->forward(at::randn({6, 4})).latents;
  auto expected = at::zeros({10});
  expected[5] = 3.0;
  expected[1] = 2.0;
  expected[4] = 2.0;
  for (std::int64_t b = 0; b < 6; ++b) EXPECT_TRUE(z[b].equal(expected)) << z[b];
}

TEST(SaeArchitectures, TopkWithFewPositivePreActivationsKeepsOnlyPositives) {
  auto sae =
      make_sae("topk", {{"d_in", std::int64_t(4)}, {"d_sae", std::int64_t(10)}, {"k", std::int64_t(4)}});
  {
    at::NoGradGuard ng;
    sae->state()["W_enc"].zero_();
    sae->state()["b_enc"].copy_(at::tensor({-1.0, 2.0, -3.0, -1.0, -2.0, 1.0, -1.0, -5.0, -2.0, -1.0}));
  }
  auto z = sae->forward(at::randn({2, 4})).latents;
  EXPECT_EQ((z != 0).sum().item<std::int64_t>(), 4);  // two positives per row
}

TEST(SaeArchitectures, BatchTopkKeepsKTimesBatchInTrainingAndThresholdsInEval) {
  auto sae =
      make_sae("batchtopk",
               {{"d_in", std::int64_t(16)}, {"d_sae", std::int64_t(64)}, {"k", 3.0}, {"threshold_lr", 0.25}});
  {
    at::NoGradGuard ng;
    sae->state()["b_enc"].fill_(10.0);
  }
  sae->train(true);
  auto x = at::randn({20, 16});
  auto out = sae->forward(x);
  EXPECT_EQ((out.latents != 0).sum().item<std::int64_t>(), 3 * 20);
  // The kept entries are the 60 largest of the whole batch.
  auto flat = out.pre_activations.detach().flatten();
  auto cut = std::get<0>(flat.topk(60)).min();
  EXPECT_TRUE(((out.latents.flatten() != 0) == (flat >= cut)).all().item<bool>());
  // First batch: θ = the smallest kept activation; then a running average with rate 0.25.
  double theta1 = sae->state()["threshold"].max().item<double>();
  EXPECT_NEAR(theta1, cut.item<double>(), 1e-6);
  auto x2 = at::randn({20, 16});
  auto out2 = sae->forward(x2);
  double min2 = out2.latents.masked_select(out2.latents > 0).min().item<double>();
  double theta2 = sae->state()["threshold"].max().item<double>();
  EXPECT_NEAR(theta2, 0.75 * theta1 + 0.25 * min2, 1e-5);
  EXPECT_NEAR(sae->state()["threshold"].min().item<double>(), theta2, 1e-6);
  // Eval: per-row JumpReLU with the threshold, independent of the batch and not updating θ.
  sae->eval();
  auto x3 = at::randn({7, 16});
  auto out3 = sae->forward(x3);
  auto pre = out3.pre_activations.detach();
  auto expected = at::relu(pre) * (pre > theta2).to(at::kFloat);
  EXPECT_LT(max_abs_diff(out3.latents, expected), 1e-6);
  EXPECT_NEAR(sae->state()["threshold"].max().item<double>(), theta2, 1e-7);
  EXPECT_LT(max_abs_diff(sae->forward(x3.slice(0, 0, 1)).latents, expected.slice(0, 0, 1)), 1e-6);
  EXPECT_EQ(sae->inference_architecture(), "jumprelu");
}

// The same TopK SAE with sparse and dense decoding: values and all gradients agree.
void compare_sparse_dense(const std::string& arch, const OptionValue& k) {
  Values v{{"d_in", std::int64_t(24)}, {"d_sae", std::int64_t(96)}, {"k", k}};
  Values vs = v, vd = v;
  vs["decode"] = std::string("sparse");
  vd["decode"] = std::string("dense");
  auto s = make_sae(arch, vs, 7), d = make_sae(arch, vd, 7);
  {
    at::NoGradGuard ng;
    auto st = s->state();
    st["b_dec"].normal_();
    st["b_enc"].normal_().mul_(0.1);
    d->load_state(st);
  }
  auto x = at::randn({19, 24});
  auto os = s->forward(x), od = d->forward(x);
  auto ls = (os.reconstruction - x).pow(2).sum() + os.latents.sum();
  auto ld = (od.reconstruction - x).pow(2).sum() + od.latents.sum();
  ls.backward();
  ld.backward();
  double diff = max_abs_diff(os.reconstruction, od.reconstruction);
  for (const auto& name : {"W_enc", "b_enc", "W_dec", "b_dec"}) {
    auto gs = s->named_parameters()[name].grad(), gd = d->named_parameters()[name].grad();
    ASSERT_TRUE(gs.defined() && gd.defined()) << name;
    diff = std::max(diff, max_abs_diff(gs, gd) / (1.0 + gd.abs().max().item<double>()));
  }
  std::printf("%s sparse vs dense decode (values and gradients): max diff = %.3g\n", arch.c_str(), diff);
  EXPECT_LT(diff, 1e-5);
}

TEST(SaeArchitectures, SparseTopkDecodeEqualsDenseIncludingGradients) {
  compare_sparse_dense("topk", std::int64_t(6));
}

TEST(SaeArchitectures, SparseBatchTopkDecodeEqualsDenseIncludingGradients) {
  compare_sparse_dense("batchtopk", 6.0);
}

TEST(SaeArchitectures, UnitNormDecoderRowsSurviveAdamSteps) {
  for (const char* arch : kArchs) {
    SCOPED_TRACE(arch);
    auto sae = make_sae(
        arch, {{"d_in", std::int64_t(10)},
               {"d_sae", std::int64_t(32)},
               {"k", arch == std::string("batchtopk") ? OptionValue(4.0) : OptionValue(std::int64_t(4))}});
    torch::optim::Adam opt(sae->parameters(), torch::optim::AdamOptions(1e-2));
    double worst = 0, worst_radial = 0;
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      auto x = at::randn({16, 10});
      auto out = sae->forward(x);
      ((out.reconstruction - x).pow(2).sum(1).mean() + out.latents.sum(1).mean()).backward();
      sae->before_optimizer_step();
      // After the projection the decoder gradient has no component along its rows.
      auto g = sae->decoder_weight().grad();
      ASSERT_TRUE(g.defined());
      auto W = sae->decoder_weight().detach();
      auto radial = (W * g).sum(1) / W.norm(2, {1});
      worst_radial = std::max(worst_radial, radial.abs().max().item<double>());
      opt.step();
      sae->after_optimizer_step();
      auto norms = sae->decoder_weight().detach().norm(2, {1});
      worst = std::max(worst, (norms - 1).abs().max().item<double>());
    }
    std::printf("%s: max |‖W_dec,i‖ - 1| after Adam steps = %.3g, max radial gradient = %.3g\n", arch, worst,
                worst_radial);
    EXPECT_LT(worst, 1e-5);
    EXPECT_LT(worst_radial, 1e-5);
  }
}

// Buffers are reused step to step, but never while a previous result still references them.
TEST(SaeArchitectures, ReusedBuffersNeverOverwriteLiveResults) {
  for (const char* arch : kArchs) {
    SCOPED_TRACE(arch);
    auto sae = make_sae(
        arch, {{"d_in", std::int64_t(8)},
               {"d_sae", std::int64_t(32)},
               {"k", arch == std::string("batchtopk") ? OptionValue(4.0) : OptionValue(std::int64_t(4))}});
    auto x1 = at::randn({5, 8}), x2 = at::randn({5, 8});
    auto out1 = sae->forward(x1);
    auto z1 = out1.latents.detach().clone(), p1 = out1.pre_activations.detach().clone();
    auto out2 = sae->forward(x2);  // out1 is alive: its buffers must not be reused
    EXPECT_TRUE(out1.latents.detach().equal(z1));
    EXPECT_TRUE(out1.pre_activations.detach().equal(p1));
    EXPECT_NE(out1.latents.data_ptr(), out2.latents.data_ptr());
    // A gradient someone still holds after the parameter dropped it is not reused either.
    (out1.reconstruction.pow(2).sum() + out1.latents.sum()).backward();
    auto W_enc = sae->named_parameters()["W_enc"];
    auto held = W_enc.grad();  // NOLINT(performance-unnecessary-copy-initialization): must outlive the reset
    auto g1 = held.clone();
    W_enc.mutable_grad() = at::Tensor();
    auto out3 = sae->forward(x2);
    (out3.reconstruction.pow(2).sum() + out3.latents.sum()).backward();
    EXPECT_TRUE(held.equal(g1));
    EXPECT_NE(held.data_ptr(), W_enc.grad().data_ptr());
  }
  // Once the previous step's tensors are gone, the same memory is used again.
  auto sae = make_sae("relu_l1", {{"d_in", std::int64_t(8)}, {"d_sae", std::int64_t(32)}});
  auto x = at::randn({5, 8});
  const void* first = nullptr;
  {
    auto out = sae->forward(x);
    first = out.latents.data_ptr();
  }
  auto out = sae->forward(x);
  EXPECT_EQ(out.latents.data_ptr(), first);
}

TEST(SaeArchitectures, FreeDecoderIsNotRenormalised) {
  auto sae = make_sae(
      "relu_l1",
      {{"d_in", std::int64_t(6)}, {"d_sae", std::int64_t(8)}, {"decoder_norm", std::string("free")}});
  auto norms = sae->decoder_weight().detach().norm(2, {1});
  EXPECT_LT((norms - 0.1).abs().max().item<double>(), 1e-6);  // SAELens' initial norm
  {
    at::NoGradGuard ng;
    sae->decoder_weight().mul_(3.0);
  }
  sae->after_optimizer_step();
  EXPECT_LT((sae->decoder_weight().detach().norm(2, {1}) - 0.3).abs().max().item<double>(), 1e-6);
}

TEST(SaeArchitectures, InitialisationIsSeededAndTied) {
  auto a = make_sae("relu_l1", {{"d_in", std::int64_t(6)}, {"d_sae", std::int64_t(8)}}, 5);
  auto b = make_sae("relu_l1", {{"d_in", std::int64_t(6)}, {"d_sae", std::int64_t(8)}}, 5);
  auto c = make_sae("relu_l1", {{"d_in", std::int64_t(6)}, {"d_sae", std::int64_t(8)}}, 6);
  EXPECT_TRUE(a->state()["W_dec"].equal(b->state()["W_dec"]));
  EXPECT_FALSE(a->state()["W_dec"].equal(c->state()["W_dec"]));
  EXPECT_TRUE(a->state()["W_enc"].equal(a->state()["W_dec"].t()));
  EXPECT_LT((a->state()["W_dec"].norm(2, {1}) - 1).abs().max().item<double>(), 1e-6);
}

TEST(SaeArchitectures, OptionErrorsNameTheKeyAndAllowedValues) {
  auto msg = error_of([] { make_sae("relu_l1", {{"d_sae", std::int64_t(8)}}); });
  EXPECT_NE(msg.find("d_in"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sae.d_in"), std::string::npos) << msg;
  EXPECT_NE(msg.find("768"), std::string::npos) << msg;  // says what to write
  msg = error_of([] {
    make_sae("topk", {{"d_in", std::int64_t(4)}, {"d_sae", std::int64_t(8)}, {"k", std::int64_t(9)}});
  });
  EXPECT_NE(msg.find("k = 9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("d_sae = 8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test.yaml:1:1"), std::string::npos) << msg;
  msg = error_of([] { make_sae("relu_l1", {{"d_in", std::int64_t(4)}, {"decoder_init_norm", 0.1}}); });
  EXPECT_NE(msg.find("decoder_init_norm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("decoder_norm: free"), std::string::npos) << msg;
}

}  // namespace
}  // namespace saelab::test
