// Neuron resampling (Towards Monosemanticity) on a hand-made case where the answer is known.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "saelab/train/resample.hpp"
#include "test_models.hpp"

namespace saelab {
namespace {

TEST(Resample, DeadLatentsGetHighLossInputsAndFreshAdamState) {
  const std::int64_t d_in = 8, d_sae = 6;
  auto sae = std::make_shared<test::TinySae>(d_in, d_sae, 0, 1);
  std::map<std::string, torch::Tensor> named;
  for (const auto& p : sae->named_parameters()) named[p.key()] = p.value();
  Adam adam(named, AdamConfig{});
  for (auto& [n, p] : named) p.mutable_grad() = torch::ones_like(p);
  adam.step(1e-3);
  {
    torch::NoGradGuard g;  // alive encoder columns have norm 2
    sae->W_enc.copy_(sae->W_enc / sae->W_enc.norm(2, {0}, true) * 2.0);
  }

  // 100 inputs: rows 0..4 large (loss ~ 1e4), the rest tiny (loss ~ 1e-4). Score ∝ loss², so the
  // three dead latents must receive three of the first five rows.
  torch::Tensor x = torch::randn({100, d_in}) * 1e-2;
  x.narrow(0, 0, 5).copy_(torch::randn({5, d_in}) * 100.0);
  {
    torch::NoGradGuard g;  // an SAE that reconstructs nothing: loss = ‖x‖²
    sae->W_dec.zero_();
    sae->W_dec.narrow(0, 0, 3).copy_(torch::eye(3, d_in));
  }
  torch::Tensor dead = torch::tensor({false, true, false, true, true, false});
  int calls = 0;
  auto next = [&] { return x.narrow(0, 25 * (calls++ % 4), 25); };  // four batches of 25
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
  ResampleResult r = resample_dead_latents(*sae, adam, dead, next, 100, 0.2, gen);

  EXPECT_EQ(r.resampled, 3);
  EXPECT_EQ(r.inputs_scored, 100);
  EXPECT_NEAR(r.mean_alive_encoder_norm, 2.0, 1e-5);
  torch::Tensor dirs = x.narrow(0, 0, 5) / x.narrow(0, 0, 5).norm(2, {1}, true);
  for (std::int64_t j : {1, 3, 4}) {
    torch::Tensor row = sae->W_dec[j];
    const double best = dirs.matmul(row).max().item<double>();
    EXPECT_NEAR(best, 1.0, 1e-5) << "decoder row " << j << " is not one of the high-loss inputs";
    EXPECT_NEAR(sae->W_enc.select(1, j).norm().item<double>(), 0.2 * 2.0, 1e-5);
    EXPECT_TRUE(torch::allclose(sae->W_enc.select(1, j) / 0.4, row, 1e-5, 1e-6));
    EXPECT_EQ(sae->b_enc[j].item<double>(), 0.0);
  }
  auto st = adam.state();
  for (std::int64_t j : {1, 3, 4}) {
    EXPECT_EQ(st.at("adam.m.W_enc").select(1, j).abs().sum().item<double>(), 0.0);
    EXPECT_EQ(st.at("adam.v.W_dec").select(0, j).abs().sum().item<double>(), 0.0);
    EXPECT_EQ(st.at("adam.m.b_enc")[j].item<double>(), 0.0);
  }
  EXPECT_GT(st.at("adam.m.W_enc").select(1, 0).abs().sum().item<double>(), 0.0);
  EXPECT_GT(st.at("adam.v.W_dec").select(0, 2).abs().sum().item<double>(), 0.0);
  // Three distinct inputs (sampling without replacement).
  torch::Tensor chosen = sae->W_dec.index_select(0, torch::tensor({1, 3, 4}, torch::kInt64));
  torch::Tensor gram = chosen.matmul(chosen.t());
  torch::Tensor off_diagonal = gram - torch::diag(torch::diag(gram));
  EXPECT_LT(off_diagonal.abs().max().item<double>(), 0.999) << "two dead latents got the same input";
}

TEST(Resample, NothingDeadChangesNothing) {
  auto sae = std::make_shared<test::TinySae>(4, 4, 0, 2);
  std::map<std::string, torch::Tensor> named;
  for (const auto& p : sae->named_parameters()) named[p.key()] = p.value();
  Adam adam(named, AdamConfig{});
  torch::Tensor before = sae->W_dec.clone();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  ResampleResult r = resample_dead_latents(
      *sae, adam, torch::zeros({4}, torch::kBool),
      [] {
        return torch::randn({8, 4});
      },
      64, 0.2, gen);
  EXPECT_EQ(r.resampled, 0);
  EXPECT_TRUE(torch::equal(before, sae->W_dec));
}

}  // namespace
}  // namespace saelab
