#pragma once
// Per-latent examples gathered in the report's second pass, in memory bounded by the options:
//   top-k      the k highest activations (a bounded min-heap; ties go to the earlier sequence and
//              position, so the result is exactly the brute-force top-k under that order);
//   histogram  counts of the non-zero activations in equal bins over (0, max];
//   bands      sae_vis's "quantile groups": (0, max] cut into equal-width intervals, each with its
//              share of the non-zero activations and a uniform sample of examples (reservoir
//              sampling, seeded, so a report is reproducible).
// The max comes from the first pass, so bins and bands are exact. Each kept example carries the
// latent's activation over a window of context around it (NaN at positions that are not
// evaluated, such as BOS).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/types.h>

#include "scan_input.hpp"

namespace saelab::report {

struct Example {
  float act = 0;
  std::int64_t seq = 0, pos = 0;
  std::int64_t window_start = 0;  // position of window[0]
  std::vector<float> window;      // the latent's activation at window_start...; empty: only `act`
};

// True when a ranks above b: higher activation, then earlier sequence, then earlier position.
bool ranks_before(const Example& a, const Example& b);

class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) {}
  bool accepts(float act, std::int64_t seq, std::int64_t pos) const;
  void push(Example e);                // only call when accepts() is true
  std::vector<Example> sorted() const;  // best first
  std::size_t size() const { return heap_.size(); }

 private:
  std::size_t k_;
  std::vector<Example> heap_;  // a heap whose front is the worst example kept
};

struct Band {
  double lo = 0, hi = 0;
  std::int64_t count = 0;        // non-zero activations in (lo, hi]
  std::vector<Example> samples;  // uniform sample of them
};

struct CollectOptions {
  std::int64_t top_k = 20;
  std::int64_t bands = 5;
  std::int64_t band_samples = 4;
  std::int64_t histogram_bins = 40;
  std::int64_t context_left = 10;
  std::int64_t context_right = 4;
  std::uint64_t seed = 0;
};

struct LatentExamples {
  LatentExamples(std::int64_t latent, float max_act, const CollectOptions& opts);
  std::int64_t latent;
  float max_act;  // from the first pass
  TopK top;
  std::vector<std::int64_t> histogram;  // [histogram_bins] over (0, max_act]
  std::vector<Band> bands;              // lowest first
  std::int64_t nonzero = 0;
  std::mt19937_64 rng;
};

// Index of v in `n` equal bins over (0, max]; v > 0.
std::int64_t bin_of(double v, double max, std::int64_t n);

// Updates every latent with one batch. lat [T, latents.size()] float32 CPU: column j holds
// latents[j]'s activations for the batch's rows.
void collect_batch(std::vector<LatentExamples>& latents, const torch::Tensor& lat,
                   const ScanBatch& batch, const CollectOptions& opts);

// Which latents to show. counts/max [d_sae] from the first pass.
enum class Selection { MostActive, MaxActivation, Random, List };
Selection parse_selection(const std::string& s);
std::vector<std::int64_t> select_latents(Selection how, const torch::Tensor& counts,
                                         const torch::Tensor& max_act, std::int64_t n,
                                         const std::vector<std::int64_t>& list, std::uint64_t seed);

}  // namespace saelab::report
