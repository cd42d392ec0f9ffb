#pragma once
// Per-latent firing statistics kept during training.
//
// DeadLatentTracker: rows since each latent last fired; a latent is dead once that reaches the
// window. Feeds the dead fraction metric, the dead mask handed to losses (AuxK) and resampling.
// FeatureDensity: firing counts over the last `window_rows` rows of training, for
// sparsity.safetensors (log10 feature density, as SAELens saves it).
#include <cstdint>
#include <map>
#include <string>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

// [batch, d_sae] latents -> [d_sae] int64 count of rows in which each latent is non-zero.
SAELAB_API torch::Tensor fire_counts(const torch::Tensor& latents);

class SAELAB_API DeadLatentTracker {
 public:
  DeadLatentTracker(std::int64_t d_sae, std::int64_t window_rows);
  // counts: [d_sae] from fire_counts over a batch of `rows` rows.
  void update(const torch::Tensor& counts, std::int64_t rows);
  torch::Tensor dead_mask() const;  // [d_sae] bool
  std::int64_t dead_count() const;
  double dead_fraction() const;
  // Resampled latents start a fresh window.
  void revive(const torch::Tensor& index);

  std::map<std::string, torch::Tensor> state() const;  // "dead.rows_since_fired"
  void load_state(const std::map<std::string, torch::Tensor>& tensors, const std::string& where);

 private:
  torch::Tensor rows_since_fired_;  // [d_sae] int64
  std::int64_t window_;
};

class SAELAB_API FeatureDensity {
 public:
  // Counts rows from step `first_step` on (the last window of a run of known length).
  FeatureDensity(std::int64_t d_sae, std::int64_t first_step);
  void update(std::int64_t step, const torch::Tensor& counts, std::int64_t rows);
  // [d_sae] float32 log10(count / rows + 1e-10); all -10 if nothing was counted.
  torch::Tensor log10_density() const;
  std::int64_t rows_counted() const { return rows_; }

  std::map<std::string, torch::Tensor> state() const;  // "density.counts", "density.rows"
  void load_state(const std::map<std::string, torch::Tensor>& tensors, const std::string& where);

 private:
  torch::Tensor counts_;  // [d_sae] int64
  std::int64_t first_step_;
  std::int64_t rows_ = 0;
};

}  // namespace saelab
