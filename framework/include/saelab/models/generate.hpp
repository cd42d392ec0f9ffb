#pragma once
// Text generation shared by transformer sources: choosing each next token, and the decode loop
// with or without a key/value cache.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "saelab/core/det_rng.hpp"
#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"

namespace saelab::models {

// The next token from logits [vocab]: argmax when opts.temperature == 0 (ties: the lower id);
// else softmax(logits / T) in float64, cut to the most probable tokens whose mass first reaches
// top_p, renormalised, and one uniform draw from `rng` (order: probability desc, id asc).
SAELAB_API std::int32_t next_token(const torch::Tensor& logits, const GenerateOptions& opts, DetRng& rng);

// Checks opts (UsageError naming the option and what is allowed).
SAELAB_API void check_generate_options(const GenerateOptions& opts);

// Keys and values of the positions a model has run for one sequence; each model defines its own.
class SAELAB_API KvCache {
 public:
  virtual ~KvCache() = default;
  std::int64_t length = 0;  // positions held
};

}  // namespace saelab::models
