#pragma once
// Data-parallel gradients: after backward, every parameter's .grad is the mean over ranks of the
// ranks' gradients (each rank's loss is a mean over its own rows, so this is the gradient of the
// global batch's mean loss). As DDP's reducer does, parameters are packed into buckets of about
// `bucket_bytes`, filled in reverse registration order (the order backward produces them), and a
// bucket's all-reduce starts as soon as its last gradient arrives, while backward goes on. Buckets
// start strictly in order on every rank, so the collectives match even when a gradient is late.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/dist/process_group.hpp"

namespace saelab::dist {

// grad summed over `n` contributions -> their mean. The one place the division happens, so a
// single process that sums n micro-batch gradients gets the same bits as n ranks.
SAELAB_API void mean_of_summed(torch::Tensor& grad, std::int64_t n);

struct SAELAB_API ReduceStats {
  std::int64_t bytes_per_step = 0;  // bytes all-reduced per optimizer step
  std::int64_t buckets = 0;
  double wait_s = 0;  // time finish() spent waiting for all-reduces (not hidden behind backward)
  std::int64_t steps = 0;
};

class SAELAB_API GradientReducer {
 public:
  // overlap=false reduces everything after backward (the baseline the benchmark compares with).
  GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> params, std::int64_t bucket_bytes,
                  bool overlap);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Call before the step's one backward when overlapping (arms the gradient hooks); with several
  // backward passes per step (gradient accumulation) use overlap=false.
  void prepare(const std::string& what);
  // Waits for (or, without overlap, runs) the all-reduces and writes the mean into every .grad:
  // Σ over ranks / (size · local_terms), local_terms being how many gradients each rank summed.
  void finish(std::int64_t local_terms = 1);
  const ReduceStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace saelab::dist
