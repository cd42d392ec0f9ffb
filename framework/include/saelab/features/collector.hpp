#pragma once
// Statistics of every latent from one streaming pass, in memory bounded by the options and
// independent of the number of tokens scanned; the result does not depend on how the scan is cut
// into chunks.
//
// Per latent, over the evaluated positions where it fires (activation > 0):
//   count, sum, max         density = count / tokens, mean = sum / tokens, mean_firing = sum / count
//   range                   R = the smallest power of two >= max. Bins are fixed fractions of R, so
//                           when a larger activation doubles R, each new bin is exactly the union
//                           of two old ones: counts add and samples merge, with no second pass.
//   histogram               `histogram_bins` (even) bins over (0, R]; bin i holds (i·w, (i+1)·w],
//                           w = R / bins. Since max > R/2, at least the upper half is in range.
//   top                     the top_k highest activations; ties go to the earlier sequence, then
//                           the earlier position (so the top-k is unique).
//   bands                   sae_vis's quantile groups: (0, R] cut into 2·bands equal intervals
//                           and shown up to the one that holds max (bands+1 .. 2·bands of them),
//                           each with its count and `band_samples` examples: those with the lowest
//                           sample_priority, a hash of (seed, latent, sequence, position). That
//                           is a uniform random sample that merges exactly and is reproducible.
// Each example keeps the tokens of its context window and this latent's activation at each of
// them (NaN where a position was not evaluated, such as BOS).
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/features/scan.hpp"

namespace saelab {

struct SAELAB_API FeatureOptions {
  std::int64_t top_k = 20;
  std::int64_t bands = 10;
  std::int64_t band_samples = 5;
  std::int64_t histogram_bins = 40;
  std::int64_t context_left = 10;
  std::int64_t context_right = 4;
  std::uint64_t seed = 0;
};

struct SAELAB_API FeatureExample {
  float act = 0;
  std::int64_t seq = 0, pos = 0;
  std::uint64_t priority = 0;
  std::int64_t start = 0;            // position of tokens[0]
  std::vector<std::int32_t> tokens;  // the window's token ids (-1 unknown)
  std::vector<float> acts;           // this latent at each of them, NaN = not evaluated
};

struct SAELAB_API FeatureBand {
  double lo = 0, hi = 0;  // activations in (lo, hi]
  std::int64_t count = 0;
  std::vector<FeatureExample> samples;  // lowest priority first
};

struct SAELAB_API FeatureStats {
  std::int64_t count = 0;
  double sum = 0;
  float max = 0;
  double range = 0;                     // 0 while the latent never fired
  std::vector<std::int64_t> histogram;  // [histogram_bins] over (0, range]
  std::vector<FeatureExample> top;      // best first
  std::vector<FeatureBand> bands;       // lowest first; empty when dead
};

// The smallest power of two >= v (v > 0, finite).
SAELAB_API double pow2_at_least(double v);
// Index of v in `bins` equal bins over (0, range]: bin i holds (i·w, (i+1)·w]. v in (0, range].
SAELAB_API std::int64_t fine_bin(double v, double range, std::int64_t bins);
SAELAB_API std::uint64_t sample_priority(std::uint64_t seed, std::int64_t latent, std::int64_t seq,
                                         std::int64_t pos);
// True when a ranks above b among top activations: higher act, then earlier (seq, pos).
SAELAB_API bool ranks_before(const FeatureExample& a, const FeatureExample& b);
// True when a is sampled before b: lower priority, then earlier (seq, pos).
SAELAB_API bool sampled_before(const FeatureExample& a, const FeatureExample& b);

class SAELAB_API FeatureCollector {
 public:
  FeatureCollector(std::int64_t d_sae, FeatureOptions opts);
  ~FeatureCollector();
  FeatureCollector(const FeatureCollector&) = delete;
  FeatureCollector& operator=(const FeatureCollector&) = delete;

  // latents [chunk.rows(), d_sae] float32 (any device): the SAE's latents of the chunk's rows.
  // Throws Error on a non-finite latent, naming the latent, sequence and position.
  void add(const torch::Tensor& latents, const ScanChunk& chunk);

  std::int64_t d_sae() const;
  std::int64_t tokens() const;  // evaluated rows seen
  const FeatureOptions& options() const;
  FeatureStats stats(std::int64_t latent) const;  // a finished copy (top sorted, bands trimmed)
  std::int64_t bytes() const;                     // memory held now (examples included)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace saelab
