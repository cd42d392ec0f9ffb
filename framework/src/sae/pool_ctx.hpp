#pragma once
// Private to the framework: carrying a sae_math::TensorPool from an autograd node's forward to
// its backward through the node's saved data.
#include <torch/csrc/autograd/custom_function.h>

#include "saelab/sae/math.hpp"

namespace saelab::sae_math {

inline void save_pool(torch::autograd::AutogradContext* ctx, const PoolPtr& pool) {
  if (pool) ctx->saved_data["pool"] = c10::IValue::make_capsule(pool);
}

inline PoolPtr pool_of(torch::autograd::AutogradContext* ctx) {
  auto it = ctx->saved_data.find("pool");
  if (it == ctx->saved_data.end() || !it->second.isCapsule()) return {};
  return c10::static_intrusive_pointer_cast<TensorPool>(it->second.toCapsule());
}

}  // namespace saelab::sae_math
