#pragma once
// An ActivationReader over rows held in memory: for tests, small experiments and the synthetic
// source, and the reference the streaming store reader can be compared with.
//
// Order: epoch e visits all rows once, in a permutation drawn from a generator seeded with
// mix(seed, e) (storage order when shuffle is false). Batches run across epoch boundaries.
// Cursor JSON: {"reader": "memory", "rows": n, "seed": s, "shuffle": b, "epoch": e, "offset": i}:
// the next row is permutation_e[i]. restore() refuses a cursor of another reader or data set.
#include <cstdint>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_store.hpp"

namespace saelab {

class SAELAB_API TensorActivationReader : public ActivationReader {
 public:
  // rows.activations [n, d]; tokens/sequence/position may be undefined (then filled with
  // zeros / the row index / zeros). Only opts.seed, batch_rows, shuffle and device are used.
  TensorActivationReader(ActivationRows rows, ReaderOptions opts);
  TensorActivationReader(torch::Tensor activations, ReaderOptions opts);

  torch::Tensor next_batch() override;
  ActivationRows next_rows() override;
  ActivationRows next_part(std::int64_t part, std::int64_t parts, bool with_provenance) override;
  std::int64_t rows_per_epoch() const override { return n_; }
  std::int64_t d() const override { return rows_.activations.size(1); }
  nlohmann::json cursor() const override;
  void restore(const nlohmann::json& cursor) override;

 private:
  torch::Tensor next_indices();  // [batch_rows] int64 rows of the next batch
  ActivationRows gather(const torch::Tensor& idx, bool with_provenance) const;
  void start_epoch(std::int64_t epoch);

  ActivationRows rows_;
  ReaderOptions opts_;
  std::int64_t n_ = 0;
  std::int64_t epoch_ = 0, offset_ = 0;
  torch::Tensor order_;  // [n] int64 permutation of the current epoch
};

}  // namespace saelab
