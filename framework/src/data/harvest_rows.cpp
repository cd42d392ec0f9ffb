#include "saelab/data/harvest_rows.hpp"

#include "saelab/core/error.hpp"

namespace saelab {

torch::Tensor rows_to_keep(const torch::Tensor& tokens, const RowFilter& filter) {
  SAELAB_CHECK(tokens.dim() == 2 && filter.first_position >= 0, Error,
               "rows_to_keep: tokens must be [batch, seq], got ", tokens.sizes());
  const auto cpu = tokens.to(torch::kCPU, torch::kInt64);
  auto keep = torch::ones(cpu.sizes(), torch::kBool);
  keep.slice(1, 0, filter.first_position).fill_(false);
  if (!filter.excluded_tokens.empty()) {
    const auto excluded =
        torch::tensor(std::vector<std::int64_t>(filter.excluded_tokens.begin(), filter.excluded_tokens.end()),
                      torch::kInt64);
    keep &= torch::isin(cpu, excluded).logical_not();
  }
  return keep;
}

ActivationRows harvest_rows(const torch::Tensor& acts, const torch::Tensor& tokens,
                            std::int64_t first_sequence, const RowFilter& filter) {
  SAELAB_CHECK(acts.dim() == 3 && acts.size(0) == tokens.size(0) && acts.size(1) == tokens.size(1), Error,
               "harvest_rows: activations ", acts.sizes(), " do not match tokens ", tokens.sizes());
  const std::int64_t B = tokens.size(0), T = tokens.size(1), d = acts.size(2);
  const auto keep = rows_to_keep(tokens, filter).reshape({-1});
  ActivationRows r;
  r.activations = acts.to(torch::kCPU, torch::kFloat32).reshape({-1, d}).index({keep}).contiguous();
  r.tokens = tokens.to(torch::kCPU, torch::kInt32).reshape({-1}).index({keep}).contiguous();
  r.sequence = (torch::arange(B, torch::kInt64) + first_sequence)
                   .unsqueeze(1)
                   .expand({B, T})
                   .reshape({-1})
                   .index({keep})
                   .contiguous();
  r.position =
      torch::arange(T, torch::kInt32).unsqueeze(0).expand({B, T}).reshape({-1}).index({keep}).contiguous();
  return r;
}

}  // namespace saelab
