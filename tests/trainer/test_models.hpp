#pragma once
// Minimal SAEs and loss terms for the trainer's tests, written independently of the sae plugins so
// that the trainer is tested on its own. Not plugins: test code only.
#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include "saelab/interfaces/loss.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab::test {

// z = ReLU((x − b_dec) W_enc + b_enc), optionally keeping only the k largest per row (k > 0);
// x̂ = z W_dec + b_dec. Decoder rows are kept at unit norm (gradient projection + renormalisation).
class TinySae : public SaeArchitecture {
 public:
  TinySae(std::int64_t d_in, std::int64_t d_sae, std::int64_t k, std::uint64_t seed);
  std::string architecture() const override { return k_ > 0 ? "topk" : "standard"; }
  SaeShape shape() const override { return {d_in_, d_sae_}; }
  SaeOutput forward(const torch::Tensor& x) override;
  torch::Tensor encode(const torch::Tensor& x) override { return forward(x).latents; }
  torch::Tensor decode(const torch::Tensor& z) override { return z.matmul(W_dec) + b_dec; }
  TensorMap state() const override;
  void load_state(const TensorMap& tensors) override;
  nlohmann::json extra_config() const override;
  torch::Tensor decoder_weight() const override { return W_dec; }
  void reinitialize_latents(const torch::Tensor& idx, const torch::Tensor& new_dirs,
                            double enc_norm) override;
  void before_optimizer_step() override;
  void after_optimizer_step() override;
  void fold_input_scale(double factor) override;

  torch::Tensor W_enc, b_enc, W_dec, b_dec;

 private:
  std::int64_t d_in_, d_sae_, k_;
};

// Σ_d (x − x̂)², mean over the batch.
class MseLoss : public Loss {
 public:
  std::string name() const override { return "mse"; }
  torch::Tensor compute(const LossContext& ctx) override;
};

// coefficient · min(1, fraction / warmup) · Σ_j |z_j| ‖W_dec[j]‖, mean over the batch.
class L1Loss : public Loss {
 public:
  explicit L1Loss(double coefficient, double warmup_fraction = 0.0)
      : coefficient_(coefficient), warmup_(warmup_fraction) {}
  std::string name() const override { return "l1"; }
  torch::Tensor compute(const LossContext& ctx) override;

 private:
  double coefficient_, warmup_;
};

// Returns NaN at step index `at` (0-based), zero otherwise: a poisoned loss term.
class PoisonLoss : public Loss {
 public:
  explicit PoisonLoss(std::int64_t at) : at_(at) {}
  std::string name() const override { return "poison"; }
  torch::Tensor compute(const LossContext& ctx) override;

 private:
  std::int64_t at_;
};

}  // namespace saelab::test
