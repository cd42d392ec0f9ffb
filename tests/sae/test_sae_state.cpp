// SAE state: save/load round trips and their error messages, input-scale folding, data-dependent
// b_dec initialisation, resampling, cfg.json extras and registry tags.
#include <cmath>
#include <set>

#include "saelab/sae/math.hpp"
#include "sae_test_util.hpp"

namespace saelab::test {
namespace {

Values shape(std::int64_t d_in, std::int64_t d_sae) {
  return {{"d_in", d_in}, {"d_sae", d_sae}};
}

TEST(SaeState, RoundTripReproducesTheForwardForEveryArchitecture) {
  for (const char* arch : {"relu_l1", "topk", "batchtopk", "jumprelu"}) {
    SCOPED_TRACE(arch);
    auto a = make_sae(arch, shape(8, 48), 1);
    auto b = make_sae(arch, shape(8, 48), 2);
    a->eval();
    b->eval();
    {
      at::NoGradGuard ng;
      auto st = a->state();
      st["b_enc"].normal_();
      st["b_dec"].normal_();
      if (st.count("threshold")) st["threshold"].uniform_(0.1, 0.5);
    }
    auto st = a->state();
    std::set<std::string> names;
    for (auto& kv : st) names.insert(kv.first);
    std::set<std::string> expected{"W_enc", "b_enc", "W_dec", "b_dec"};
    if (arch == std::string("jumprelu") || arch == std::string("batchtopk")) expected.insert("threshold");
    EXPECT_EQ(names, expected);
    b->load_state(st);
    auto x = at::randn({5, 8});
    EXPECT_LT(max_abs_diff(a->forward(x).reconstruction, b->forward(x).reconstruction), 1e-6);
  }
}

TEST(SaeState, LoadErrorsNameTheTensorAndBothShapes) {
  auto sae = make_sae("jumprelu", shape(8, 48));
  auto st = sae->state();
  auto bad = st;
  bad["W_enc"] = at::zeros({8, 49});
  auto msg = error_of([&] { sae->load_state(bad); });
  EXPECT_NE(msg.find("'W_enc'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8, 49]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8, 48]"), std::string::npos) << msg;

  bad = st;
  bad.erase("threshold");
  msg = error_of([&] { sae->load_state(bad); });
  EXPECT_NE(msg.find("'threshold' is missing"), std::string::npos) << msg;

  bad = st;
  bad["log_threshold"] = at::zeros({48});
  msg = error_of([&] { sae->load_state(bad); });
  EXPECT_NE(msg.find("unexpected tensor 'log_threshold'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("W_enc, b_enc, W_dec, b_dec, threshold"), std::string::npos) << msg;

  bad = st;
  bad["b_dec"] = at::full({8}, std::nan(""));
  msg = error_of([&] { sae->load_state(bad); });
  EXPECT_NE(msg.find("'b_dec' contains NaN"), std::string::npos) << msg;

  bad = st;
  bad["threshold"] = at::full({48}, -0.5);
  msg = error_of([&] { sae->load_state(bad); });
  EXPECT_NE(msg.find("negative"), std::string::npos) << msg;

  bad = st;
  bad["b_enc"] = at::zeros({48}, at::kLong);
  msg = error_of([&] { sae->load_state(bad); });
  EXPECT_NE(msg.find("floating point"), std::string::npos) << msg;

  // A failed load leaves the SAE as it was.
  auto after = sae->state();
  for (auto& kv : st) EXPECT_TRUE(kv.second.equal(after[kv.first])) << kv.first;
}

TEST(SaeState, FoldInputScaleTakesRawActivations) {
  for (const char* arch : {"relu_l1", "topk", "jumprelu"}) {
    SCOPED_TRACE(arch);
    auto sae = make_sae(arch, shape(8, 48));
    sae->eval();
    {
      at::NoGradGuard ng;
      auto st = sae->state();
      st["b_enc"].normal_().mul_(0.2);
      st["b_dec"].normal_();
    }
    const double f = 0.37;
    auto x = at::randn({6, 8}) * 5;
    auto scaled = sae->forward(x * f);
    sae->fold_input_scale(f);
    auto raw = sae->forward(x);
    EXPECT_LT(max_abs_diff(raw.latents, scaled.latents), 1e-5);
    EXPECT_LT(max_abs_diff(raw.reconstruction, scaled.reconstruction / f), 1e-4);
  }
  auto sae = make_sae("relu_l1", shape(4, 6));
  auto msg = error_of([&] { sae->fold_input_scale(0.0); });
  EXPECT_NE(msg.find("factor = 0"), std::string::npos) << msg;
}

TEST(SaeState, DecoderBiasFromTheSample) {
  at::manual_seed(3);
  auto x = at::randn({50, 4}) + 3;
  x.slice(0, 0, 3).mul_(40);
  auto mean =
      make_sae("relu_l1",
               {{"d_in", std::int64_t(4)}, {"d_sae", std::int64_t(6)}, {"b_dec_init", std::string("mean")}});
  mean->initialize_from_sample(x);
  EXPECT_LT(max_abs_diff(mean->state()["b_dec"], x.mean(0)), 1e-5);
  auto med = make_sae("relu_l1", {{"d_in", std::int64_t(4)},
                                  {"d_sae", std::int64_t(6)},
                                  {"b_dec_init", std::string("geometric_median")}});
  med->initialize_from_sample(x);
  EXPECT_LT(max_abs_diff(med->state()["b_dec"], sae_math::geometric_median(x)), 1e-5);
  auto zero = make_sae("relu_l1", shape(4, 6));
  zero->initialize_from_sample(x);
  EXPECT_EQ(zero->state()["b_dec"].abs().max().item<double>(), 0.0);
  auto msg = error_of([&] { med->initialize_from_sample(at::randn({5, 3})); });
  EXPECT_NE(msg.find("[batch, 4]"), std::string::npos) << msg;
}

TEST(SaeState, ReinitializeLatentsResetsOnlyTheGivenLatents) {
  auto sae = make_sae("relu_l1", shape(4, 6));
  {
    at::NoGradGuard ng;
    sae->state()["b_enc"].fill_(0.7);
  }
  auto before = sae->state();
  for (auto& kv : before) kv.second = kv.second.clone();
  auto idx = at::tensor({1, 4}, at::kLong);
  auto dirs = at::tensor({3.0f, 4.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 2.0f}).view({2, 4});
  sae->reinitialize_latents(idx, dirs, 0.25);
  auto st = sae->state();
  EXPECT_LT(max_abs_diff(st["W_dec"][1], at::tensor({0.6f, 0.8f, 0.0f, 0.0f})), 1e-6);
  EXPECT_LT(max_abs_diff(st["W_dec"][4], at::tensor({0.0f, 0.0f, 0.0f, 1.0f})), 1e-6);
  EXPECT_LT(max_abs_diff(st["W_enc"].select(1, 1), at::tensor({0.15f, 0.2f, 0.0f, 0.0f})), 1e-6);
  EXPECT_EQ(st["b_enc"][1].item<float>(), 0.0f);
  EXPECT_EQ(st["b_enc"][0].item<float>(), 0.7f);
  for (std::int64_t i : {0, 2, 3, 5}) {
    EXPECT_TRUE(st["W_dec"][i].equal(before["W_dec"][i]));
    EXPECT_TRUE(st["W_enc"].select(1, i).equal(before["W_enc"].select(1, i)));
  }
  auto msg =
      error_of([&] { sae->reinitialize_latents(at::tensor({6}, at::kLong), dirs.slice(0, 0, 1), 1.0); });
  EXPECT_NE(msg.find("[6, 6]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0, 6)"), std::string::npos) << msg;
}

TEST(SaeState, ConfigExtrasAndRegistryTags) {
  auto topk =
      make_sae("topk", {{"d_in", std::int64_t(4)}, {"d_sae", std::int64_t(8)}, {"k", std::int64_t(3)}});
  EXPECT_EQ(topk->extra_config()["k"], 3);
  EXPECT_EQ(topk->extra_config()["apply_b_dec_to_input"], true);
  for (const char* tag : {"standard", "topk", "batchtopk", "jumprelu"}) {
    const FactoryInfo* f = sae_registry().find_by_tag("sae", tag);
    ASSERT_NE(f, nullptr) << tag;
  }
  EXPECT_EQ(sae_registry().find_by_tag("sae", "standard")->name, "relu_l1");
  for (const char* arch : {"relu_l1", "topk", "batchtopk", "jumprelu"}) {
    auto sae = make_sae(arch, shape(4, 64));
    EXPECT_EQ(sae_registry().find_by_tag("sae", sae->architecture())->name, arch);
    EXPECT_NE(sae_registry().find_by_tag("sae", sae->inference_architecture()), nullptr);
  }
}

}  // namespace
}  // namespace saelab::test
