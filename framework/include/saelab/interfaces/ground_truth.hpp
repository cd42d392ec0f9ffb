#pragma once
// GroundTruth: a source that knows the features its activations are made of.
//
// The synthetic source implements it next to ActivationSource, so evaluation can measure how well an
// SAE recovered the planted dictionary (eval/recovery.hpp). Evaluators find it with dynamic_cast on
// the source; real models do not implement it.
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

class SAELAB_API GroundTruth {
 public:
  virtual ~GroundTruth() = default;
  // The planted features, unit-norm rows: [n_features, d].
  virtual torch::Tensor true_features() const = 0;
  // The planted coefficients of every position, 0 where a feature is inactive:
  // tokens [batch, seq] int64 -> [batch * seq, n_features] float32, rows in row-major order.
  virtual torch::Tensor true_coefficients(const torch::Tensor& tokens) const = 0;
};

}  // namespace saelab
