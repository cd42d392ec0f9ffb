#pragma once
// Ground-truth recovery: how well an SAE found a planted dictionary, in SynthSAEBench's terms as
// SAELens computes them (sae_lens/synthetic/evals.py, sae-lens 6.54). F planted features t_i
// [F, d], the SAE's S decoder rows w_j [S, d]; every cosine is |cos| of the two rows (SAELens's
// cosine_similarities(...).abs(); a zero row has cosine 0 with everything).
//
//   mcc                    optimal one-to-one matching of latents and planted features
//                          (Hungarian, min(F, S) pairs), the mean |cos| of the matched pairs
//                          (SAELens mean_correlation_coefficient)
//   mean_max_cosine        mean over planted features of max_j |cos(t_i, w_j)|
//   fraction_recovered     share of planted features with max |cos| ≥ threshold (0.9)
//   uniqueness             latents' best features argmax_i |cos(w_j, t_i)|: distinct ones / S
//                          (SAELens feature_uniqueness)
//   features_claimed_by_several  planted features that are the best feature, at |cos| ≥ threshold,
//                          of more than one latent (duplicated features)
//   precision / recall / F1 / accuracy  on activations: each latent j is a classifier for its
//                          best feature i*(j) over the evaluated rows (fires: latent ≠ 0; true:
//                          coefficient > 0), TP/FP/FN/TN per latent, each score 0 where its
//                          denominator is 0, averaged over all S latents
//                          (SAELens ClassificationMetricsCalculator)
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::metrics {

inline constexpr double kRecoveryThreshold = 0.9;
// Above this many |cos| entries (F · S) the exact matching is skipped and mcc is null.
inline constexpr std::int64_t kMaxMatchingEntries = std::int64_t(1) << 26;

// |cos| of every pair of rows: a [F, d], b [S, d] -> [F, S] float64.
SAELAB_API torch::Tensor abs_cosine_matrix(const torch::Tensor& a, const torch::Tensor& b);
// Maximum-weight one-to-one matching of a weight matrix [n, m]: for each row, its column, or -1
// when n > m leaves it out. Exact (shortest augmenting paths, O(min² · max)).
SAELAB_API std::vector<std::int64_t> max_weight_matching(const torch::Tensor& weights);

struct SAELAB_API DictionaryRecovery {
  std::int64_t planted = 0, latents = 0, recovered = 0, features_claimed_by_several = 0;
  double threshold = kRecoveryThreshold;
  double mcc = 0, mean_max_cosine = 0, fraction_recovered = 0, uniqueness = 0;
  torch::Tensor best_feature;  // [S] int64: each latent's best planted feature
};

// true_features [F, d], decoder [S, d] (any float dtype, any device).
SAELAB_API DictionaryRecovery dictionary_recovery(const torch::Tensor& true_features,
                                                  const torch::Tensor& decoder,
                                                  double threshold = kRecoveryThreshold);

struct SAELAB_API ClassificationMetrics {
  std::int64_t rows = 0;
  double precision = 0, recall = 0, f1 = 0, accuracy = 0;
};

// Streams (true coefficients, SAE latents) of the same rows; best_feature from dictionary_recovery.
class SAELAB_API ClassificationAccumulator {
 public:
  explicit ClassificationAccumulator(torch::Tensor best_feature);
  // coefficients [n, F], latents [n, S].
  void add(const torch::Tensor& coefficients, const torch::Tensor& latents);
  ClassificationMetrics result() const;

 private:
  torch::Tensor best_feature_;  // [S] int64
  std::int64_t rows_ = 0;
  torch::Tensor tp_, fp_, fn_;  // [S] int64
};

// Both, as eval.json's "ground_truth" object.
SAELAB_API nlohmann::json recovery_json(const DictionaryRecovery& d, const ClassificationMetrics& c);

}  // namespace saelab::metrics
