// Data-parallel training: what the ranks reduce each step and how they check they agree.
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/sha256.hpp"
#include "train/trainer_impl.hpp"

namespace saelab {

namespace {

// The bits of every element summed as integers: exact, so independent of the summation order and
// of the thread count, and any changed bit changes it (unless changes cancel, which a silent
// divergence does not arrange). Folded to 52 bits so a double holds it exactly.
double bit_checksum(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::int64_t sum = 0;
  for (const auto& t : tensors) {
    const torch::Tensor c = t.detach().contiguous().to(torch::kCPU);
    const torch::Dtype as = c.element_size() == 8   ? torch::kInt64
                            : c.element_size() == 4 ? torch::kInt32
                            : c.element_size() == 2 ? torch::kInt16
                                                    : torch::kUInt8;
    sum += c.view(as).to(torch::kInt64).sum().item<std::int64_t>();
  }
  return static_cast<double>(sum & ((std::int64_t(1) << 52) - 1));
}

// 52 bits of the SHA-256 of the state's JSON text (a double holds them exactly).
double state_checksum(const nlohmann::json& state) {
  return static_cast<double>(std::stoull(sha256_hex(state.dump()).substr(0, 13), nullptr, 16));
}

}  // namespace

void Trainer::Impl::setup_parallel() {
  group = in.parallel.group.get();
  if (!group) return;
  const std::int64_t w = group->size(), n = cfg.micro_batches;
  SAELAB_CHECK(cfg.batch_size % (w * n) == 0, ConfigError, "train.batch_size = ", cfg.batch_size,
               " is the global batch of a data-parallel run; with ", w, " ranks",
               n > 1 ? cat(" and train.micro_batches = ", n) : std::string(), " it must be a multiple of ",
               w * n, " (each rank trains on batch_size / ", w, " rows)");
  SAELAB_CHECK(in.parallel.bucket_bytes >= 1, ConfigError, "distributed.bucket_mb must be > 0");
  reducer = std::make_unique<dist::GradientReducer>(*group, params, in.parallel.bucket_bytes,
                                                    in.parallel.overlap && n == 1);
}

void Trainer::Impl::reduce_over_ranks(StepSums& s, bool log) {
  // One float64 vector: [counts (d_sae), terms, stop, loss sums, (log:) residual, sq_norm,
  // target_sum (d_out)].
  std::vector<torch::Tensor> parts{s.counts.to(torch::kCPU, torch::kFloat64)};
  std::vector<double> scalars = s.terms;
  scalars.push_back(stop_requested() ? 1.0 : 0.0);
  for (const auto& l : s.loss_sums) scalars.insert(scalars.end(), l.begin(), l.end());
  if (log) {
    scalars.push_back(s.residual);
    scalars.push_back(s.sq_norm);
  }
  parts.push_back(torch::tensor(scalars, torch::kFloat64));
  if (log) parts.push_back(s.target_sum.to(torch::kCPU));
  torch::Tensor packed = torch::cat(parts);
  group->all_reduce(packed, dist::ReduceOp::Sum, cat("the reduction of step ", step + 1, "'s statistics"));
  const std::int64_t d_sae = s.counts.numel(), t = static_cast<std::int64_t>(s.terms.size());
  s.counts = packed.narrow(0, 0, d_sae).round().to(s.counts.device(), torch::kInt64);
  const torch::Tensor sc = packed.narrow(0, d_sae, scalars.size());
  for (std::int64_t i = 0; i < t; ++i) s.terms[i] = sc[i].item<double>();
  stop_voted = sc[t].item<double>() > 0;
  std::int64_t at = t + 1;
  for (auto& l : s.loss_sums)
    for (double& v : l) v = sc[at++].item<double>();
  if (!log) return;
  s.residual = sc[at].item<double>();
  s.sq_norm = sc[at + 1].item<double>();
  s.target_sum = packed.narrow(0, d_sae + static_cast<std::int64_t>(scalars.size()), s.target_sum.numel());
}

void Trainer::Impl::check_ranks_agree(const std::string& when) {
  if (!group) return;
  dist::check_same_on_all_ranks(*group, static_cast<double>(step), cat("the step ", when));
  std::vector<torch::Tensor> state = params;
  for (const auto& b : in.sae->buffers(/*recurse=*/true)) state.push_back(b);
  dist::check_same_on_all_ranks(
      *group, bit_checksum(state),
      cat("the parameter checksum ", when,
          " (the ranks' SAEs have diverged; this is a bug, or the ranks resumed from different "
          "checkpoints: relaunch from one shared run directory)"));
  for (const auto& l : in.losses) {
    const nlohmann::json st = l->state();
    if (st.is_null()) continue;
    dist::check_same_on_all_ranks(
        *group, state_checksum(st),
        cat("the state of loss '", l->name(), "' ", when,
            " (a loss that adapts inside compute() instead of in end_step() drifts apart on the ranks)"));
  }
}

}  // namespace saelab
