#pragma once
// SAE evaluation metrics: each formula is one small pure function, and streaming accumulators apply
// them over any number of batches with bounded memory (a few scalars, or O(d) / O(d_sae) vectors).
//
// Definitions (N evaluated tokens, x [N, d] the activations, x̂ the reconstruction, f [N, d_sae] the
// latents). They follow SAELens's sae_lens/evals.py unless a note says otherwise:
//   explained variance  1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖²  (pooled over all tokens, SAELens's current
//                       formula, not the per-batch "legacy" one). Accumulated with Chan et al.'s
//                       pairwise update of the mean and Σ‖x − mean‖², which avoids the cancellation of
//                       Σ‖x‖² − N‖mean‖² on residual streams with large mean components.
//   mse                 Σ‖x − x̂‖² / (N·d), per element as torch's mse_loss (SAELens's "mse" is a
//                       per-batch quirk); squared_error_per_token = Σ‖x − x̂‖² / N.
//   cosine similarity   mean over tokens of cos(x, x̂); a zero vector counts as 0 (SAELens: NaN).
//   relative reconstruction bias  Σ‖x̂‖² / Σ x·x̂ (Gated SAE paper, arXiv 2404.16014 eq. 10), the γ
//                       minimising E‖x̂/γ − x‖²: 1 is unbiased, below 1 means shrinkage.
//   l2 ratio            mean ‖x̂‖/‖x‖ (‖x‖ < 1e-4 divides by 1, as SAELens).
//   L0 / L1             mean over tokens of the number of non-zero latents / of Σ|f|.
//   feature density     tokens on which a latent is non-zero / N; dead = never non-zero in the N
//                       tokens; log10 density uses log10(density + 1e-10) so dead latents read −10.
//   CE loss score       (CE_ablated − CE_spliced) / (CE_ablated − CE_clean), with the hook zeroed for
//                       "ablated"; 1 = the SAE loses nothing, 0 = as bad as zero ablation.
//   KL                  mean over positions of KL(p_clean ‖ p_spliced) of next-token distributions;
//                       kl_div_score = (KL_ablated − KL_spliced) / KL_ablated.
// Undefined values (a zero denominator, no tokens) are NaN; write them with json_number (-> null).
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::metrics {

inline constexpr double kLogDensityEpsilon = 1e-10;

// ---- per-token quantities ----
// Non-zero latents per token: [n, d_sae] -> [n] float64.
SAELAB_API torch::Tensor active_latents(const torch::Tensor& latents);
// ‖x − x̂‖² per token: [n, d] -> [n] float64.
SAELAB_API torch::Tensor squared_error(const torch::Tensor& x, const torch::Tensor& x_hat);
// cos(x, x̂) per token, 0 where either vector is zero: [n, d] -> [n] float64.
SAELAB_API torch::Tensor cosine_similarity(const torch::Tensor& x, const torch::Tensor& x_hat);
// KL(softmax(p) ‖ softmax(q)) over the last dimension: [..., vocab] -> [...] float64.
SAELAB_API torch::Tensor kl_divergence(const torch::Tensor& logits_p, const torch::Tensor& logits_q);

// ---- scalar formulas ----
SAELAB_API double explained_variance(double residual_sum_squares, double total_sum_squares);
SAELAB_API double ce_loss_score(double ce_clean, double ce_spliced, double ce_ablated);
SAELAB_API double kl_div_score(double kl_spliced, double kl_ablated);
SAELAB_API double relative_reconstruction_bias(double sum_xhat_squared, double sum_x_dot_xhat);
SAELAB_API double feature_density(std::int64_t fires, std::int64_t tokens);
SAELAB_API double log10_feature_density(std::int64_t fires, std::int64_t tokens);
// Latents with a zero firing count: fire_counts [d_sae] int64.
SAELAB_API std::int64_t dead_latents(const torch::Tensor& fire_counts);
// A finite double, or null: JSON has no NaN.
SAELAB_API nlohmann::json json_number(double v);

// ---- streaming accumulators ----
struct SAELAB_API ReconstructionMetrics {
  std::int64_t tokens = 0;
  double explained_variance = 0, mse = 0, squared_error_per_token = 0, variance_per_token = 0;
  double cosine_similarity = 0, relative_reconstruction_bias = 0;
  double l2_norm_in = 0, l2_norm_out = 0, l2_ratio = 0;
  nlohmann::json to_json() const;
};

class SAELAB_API ReconstructionAccumulator {
 public:
  // x, x_hat [n, d] on any device; the sums are kept in float64 on the CPU.
  void add(const torch::Tensor& x, const torch::Tensor& x_hat);
  ReconstructionMetrics result() const;
  std::int64_t tokens() const { return n_; }

 private:
  std::int64_t n_ = 0;
  torch::Tensor mean_;  // [d] float64, running mean of x
  double m2_ = 0;       // Σ‖x − mean‖² over the tokens so far
  double sse_ = 0, sum_cos_ = 0, sum_xhat_sq_ = 0, sum_dot_ = 0;
  double sum_norm_in_ = 0, sum_norm_out_ = 0, sum_ratio_ = 0;
};

struct SAELAB_API SparsityMetrics {
  std::int64_t tokens = 0, d_sae = 0, dead_latents = 0;
  double l0 = 0, l1 = 0;
  nlohmann::json to_json() const;
};

// Per-latent firing statistics over a stream of tokens.
class SAELAB_API LatentFiringAccumulator {
 public:
  explicit LatentFiringAccumulator(std::int64_t d_sae);
  void add(const torch::Tensor& latents);  // [n, d_sae]
  SparsityMetrics result() const;
  std::int64_t tokens() const { return tokens_; }
  const torch::Tensor& fire_counts() const { return counts_; }  // [d_sae] int64
  const torch::Tensor& max_activation() const { return max_; }  // [d_sae] float32 (0 if never)
  const torch::Tensor& sum_activation() const { return sum_; }  // [d_sae] float64

 private:
  std::int64_t d_sae_, tokens_ = 0;
  double sum_l0_ = 0, sum_l1_ = 0;
  torch::Tensor counts_, max_, sum_;
};

struct SAELAB_API DownstreamMetrics {
  std::int64_t ce_positions = 0, kl_positions = 0;
  double ce_clean = 0, ce_spliced = 0, ce_ablated = 0, ce_loss_score = 0;
  double kl_spliced = 0, kl_ablated = 0, kl_div_score = 0;
  nlohmann::json to_json() const;
};

class SAELAB_API DownstreamAccumulator {
 public:
  // Per-position cross-entropies [b, s-1] and the positions to count (bool, same shape).
  void add_ce(const torch::Tensor& clean, const torch::Tensor& spliced, const torch::Tensor& ablated,
              const torch::Tensor& mask);
  // Per-position KL(clean ‖ spliced) and KL(clean ‖ ablated) [b, s] and their mask.
  void add_kl(const torch::Tensor& spliced, const torch::Tensor& ablated, const torch::Tensor& mask);
  DownstreamMetrics result() const;

 private:
  std::int64_t ce_n_ = 0, kl_n_ = 0;
  double ce_clean_ = 0, ce_spliced_ = 0, ce_ablated_ = 0, kl_spliced_ = 0, kl_ablated_ = 0;
};

}  // namespace saelab::metrics
