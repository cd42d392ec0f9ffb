#pragma once
// Linear layers over [..., in] activations run as one GEMM over all leading positions.
#include <torch/types.h>

namespace saelab::models {

// [..., in] -> [rows, in]: a view when x is contiguous, which model code keeps it.
inline torch::Tensor rows(const torch::Tensor& x) {
  return x.reshape({-1, x.size(-1)});
}

// [rows, out] back to `like`'s leading dimensions: [..., out].
inline torch::Tensor unflatten(const torch::Tensor& y, const torch::Tensor& like) {
  auto sizes = like.sizes().vec();
  sizes.back() = y.size(-1);
  return y.view(sizes);
}

}  // namespace saelab::models
