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
//   mse                 Σ‖x − x̂‖² / N: summed over dimensions, averaged over tokens (sae-lens 6.54's
//                       "mse", which no longer divides by the token count a second time);
//                       mse_per_element = Σ‖x − x̂‖² / (N·d), as torch's mse_loss.
//   cosine similarity   mean over tokens of cos(x, x̂); a zero vector counts as 0 (SAELens: NaN).
//   relative reconstruction bias  Σ‖x̂‖² / Σ x·x̂ (Gated SAE paper, arXiv 2404.16014 eq. 10), the γ
//                       minimising E‖x̂/γ − x‖²: 1 is unbiased, below 1 means shrinkage.
//   l2 ratio            mean ‖x̂‖/‖x‖ (‖x‖ < 1e-4 divides by 1, as SAELens).
//   L0 / L1             mean over tokens of the number of non-zero latents / of Σ|f|; the L0
//                       distribution (std, 10th/50th/90th percentile, max) from a histogram of
//                       per-token L0 (percentile p: the smallest L0 with at least p of the tokens).
//   frac_alive          latents non-zero on at least one token / d_sae (SAEBench core)
//   freq_over_1_percent latents with density > 0.01 / d_sae; freq_over_10_percent: > 0.1 (SAEBench)
//   average max decoder cosine  mean over latents of the largest cosine between its decoder row and
//                       any other latent's (SAEBench calculate_max_cosine_sim on W_dec); the same
//                       for the encoder's columns.
//   feature density     tokens on which a latent is non-zero / N; dead = never non-zero in the N
//                       tokens; log10 density uses log10(density + 1e-10) so dead latents read −10.
//   CE loss score       (CE_ablated − CE_spliced) / (CE_ablated − CE_clean), with the hook zeroed for
//                       "ablated"; 1 = the SAE loses nothing, 0 = as bad as zero ablation. The mean-
//                       ablation score replaces the hook with the mean activation of the batch's
//                       evaluated positions instead. "With error term" splices x̂ + (x − x̂): it must
//                       give CE_clean back, which checks the splice itself.
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
// For each row, the largest cosine with any other row (zero rows count as cosine 0):
// directions [n, d] -> [n] float64. Computed in blocks, so memory is O(block · n).
SAELAB_API torch::Tensor max_cosine_to_others(const torch::Tensor& directions);

// ---- streaming accumulators ----
struct SAELAB_API ReconstructionMetrics {
  std::int64_t tokens = 0;
  double explained_variance = 0, mse = 0, mse_per_element = 0, variance_per_token = 0;
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

struct SAELAB_API L0Distribution {
  double std = 0, p10 = 0, p50 = 0, p90 = 0, max = 0;
};

// From a histogram of per-token L0 (histogram[k] = tokens with L0 k) over `tokens` tokens.
SAELAB_API L0Distribution l0_distribution(const std::vector<std::int64_t>& histogram, std::int64_t tokens);

struct SAELAB_API SparsityMetrics {
  std::int64_t tokens = 0, d_sae = 0, dead_latents = 0;
  double l0 = 0, l1 = 0;
  L0Distribution l0_distribution;
  double frac_alive = 0, freq_over_1_percent = 0, freq_over_10_percent = 0;
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
  std::vector<std::int64_t> l0_histogram_;  // [d_sae + 1]: tokens with each L0
};

// The model runs of a spliced evaluation. Clean has no KL (it is the reference).
enum class ModelRun { Clean, Spliced, ZeroAblated, MeanAblated, WithErrorTerm };
inline constexpr int kModelRuns = 5;

struct SAELAB_API DownstreamMetrics {
  std::int64_t ce_positions = 0, kl_positions = 0;
  double ce_clean = 0, ce_spliced = 0, ce_ablated = 0, ce_loss_score = 0;
  double kl_spliced = 0, kl_ablated = 0, kl_div_score = 0;
  // NaN when the run was not made.
  double ce_mean_ablated = 0, ce_loss_score_mean_ablation = 0, kl_mean_ablated = 0,
         kl_div_score_mean_ablation = 0;
  double ce_with_error_term = 0, kl_with_error_term = 0;
  double error_term_max_abs_ce_diff = 0;  // max over positions of |CE_with_error_term − CE_clean|
  nlohmann::json to_json() const;
};

class SAELAB_API DownstreamAccumulator {
 public:
  // Per-position cross-entropy [b, s-1] of one run and the positions to count (bool, same shape).
  void add_ce(ModelRun run, const torch::Tensor& ce, const torch::Tensor& mask);
  // Per-position KL(clean ‖ run) [b, s] and its mask.
  void add_kl(ModelRun run, const torch::Tensor& kl, const torch::Tensor& mask);
  // The three runs every spliced evaluation makes.
  void add_ce(const torch::Tensor& clean, const torch::Tensor& spliced, const torch::Tensor& ablated,
              const torch::Tensor& mask);
  void add_kl(const torch::Tensor& spliced, const torch::Tensor& ablated, const torch::Tensor& mask);
  // Records max |with_error_term − clean| over the masked positions of one batch.
  void add_error_term_gap(const torch::Tensor& clean, const torch::Tensor& with_error,
                          const torch::Tensor& mask);
  DownstreamMetrics result() const;

 private:
  std::int64_t ce_n_[kModelRuns] = {}, kl_n_[kModelRuns] = {};
  double ce_sum_[kModelRuns] = {}, kl_sum_[kModelRuns] = {};
  double error_gap_ = 0;
};

}  // namespace saelab::metrics
