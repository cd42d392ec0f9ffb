#pragma once
// Per-latent reference statistics: what a latent's activations look like on a reference corpus
// (the run's stored rows, or text run through the model), so that steering strengths can be
// given as multiples of a latent's largest activation and monitor thresholds as quantiles.
//
// One streaming pass over a FeatureScan: every latent's maximum, and for the latents asked for,
// all their positive activations (sorted), from which any quantile over all reference rows
// (zeros included) is exact. Memory: d_sae floats plus the positive values of the kept latents.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/features/scan.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

struct SAELAB_API LatentReference {
  std::int64_t rows = 0;  // reference rows seen
  torch::Tensor max;      // [d_sae] float32 on CPU, each latent's largest activation (0: never fired)
  std::map<std::int64_t, std::vector<float>> positive;  // kept latent -> its activations > 0, ascending
  std::string description;                              // where the rows came from, for messages and output

  double max_of(std::int64_t latent) const;
  // The q-quantile (0 <= q <= 1) of a kept latent's activation over all rows, zeros included,
  // by the nearest-rank rule: the smallest value v with at least ceil(q · rows) rows <= v.
  // Throws Error for a latent that was not kept.
  double quantile(std::int64_t latent, double q) const;
};

// Encodes every row the scan yields in blocks of `block` rows.
SAELAB_API LatentReference reference_statistics(FeatureScan& scan, SaeArchitecture& sae,
                                                std::vector<std::int64_t> keep, std::int64_t block = 4096);

// Nearest-rank quantile over `rows` values of which `sorted_positive` are the positive ones
// (ascending) and the rest are 0.
SAELAB_API double nearest_rank_quantile(const std::vector<float>& sorted_positive, std::int64_t rows,
                                        double q);

}  // namespace saelab
