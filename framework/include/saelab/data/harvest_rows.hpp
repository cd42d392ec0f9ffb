#pragma once
// Which activations of a forward pass become stored rows. Outlier positions (attention sinks:
// BOS, the first position, control tokens) are left out before the store sees them, so they
// neither dominate the SAE's loss nor skew the store's normalisation statistics.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_store.hpp"

namespace saelab {

// tokens [batch, seq] -> keep [batch, seq] bool (CPU).
SAELAB_API torch::Tensor rows_to_keep(const torch::Tensor& tokens, const RowFilter& filter);

// acts [batch, seq, d], tokens [batch, seq] -> the kept rows with their provenance: sequence
// first_sequence + b, position t, token tokens[b, t]; in (b, t) order.
SAELAB_API ActivationRows harvest_rows(const torch::Tensor& acts, const torch::Tensor& tokens,
                                       std::int64_t first_sequence, const RowFilter& filter);

}  // namespace saelab
