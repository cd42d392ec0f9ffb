// One optimizer step: the batch's micro-batches (this rank's slice of it in a data-parallel run),
// the reductions over ranks, the update, and the step's metrics.
#include <cmath>

#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "train/trainer_impl.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_non_finite(const std::string& what, double value, std::int64_t step,
                                  std::int64_t total,
                                  const std::vector<std::pair<std::string, double>>& terms,
                                  const fs::path& last_checkpoint) {
  std::string detail;
  for (const auto& [name, v] : terms) detail += cat(detail.empty() ? "" : ", ", name, " = ", v);
  throw Error(cat("training stopped at step ", step, " of ", total, ": the ", what, " is ", value,
                  terms.empty() ? "" : " (", detail, terms.empty() ? "" : ")", ". ",
                  last_checkpoint.empty()
                      ? std::string("No checkpoint had been written yet.")
                      : cat("The last good checkpoint is ", last_checkpoint.string(), "."),
                  " Check the activations for NaN/Inf, lower train.lr or enable "
                  "train.grad_clip_norm, then resume or restart"));
}

void add_reconstruction(StepSums& s, const torch::Tensor& y, const torch::Tensor& y_hat) {
  torch::NoGradGuard no_grad;
  const torch::Tensor yd = y.to(torch::kFloat64);
  s.residual += (yd - y_hat.to(torch::kFloat64)).pow(2).sum().item<double>();
  s.sq_norm += yd.pow(2).sum().item<double>();
  const torch::Tensor sum = yd.sum(0);
  s.target_sum = s.target_sum.defined() ? s.target_sum + sum : sum;
}

}  // namespace

Trainer::Impl::Batch Trainer::Impl::part_of(const Batch& b, std::int64_t part, std::int64_t parts) {
  if (parts == 1) return b;
  const std::int64_t n = b.x.size(0) / parts;
  Batch out;
  out.x = b.x.narrow(0, part * n, n);
  if (b.target.defined()) out.target = b.target.narrow(0, part * n, n);
  return out;
}

double explained_variance(double residual, double sq_norm, const torch::Tensor& sum, std::int64_t rows) {
  const double total = sq_norm - sum.pow(2).sum().item<double>() / static_cast<double>(rows);
  return total > 0 ? 1.0 - residual / total : 0.0;
}

void Trainer::Impl::micro_step(const Batch& b, const torch::Tensor& dead_mask, bool log, StepSums& sums) {
  const torch::Tensor& target = b.target.defined() ? b.target : b.x;  // [rows, d_out]
  SaeOutput out = in.sae->forward(b.x);
  LossContext ctx{b.x,
                  out,
                  *in.sae,
                  dead_mask,
                  TrainProgress{step, total_steps()},
                  b.target.defined() ? &b.target : nullptr};
  torch::Tensor total;
  for (std::size_t i = 0; i < in.losses.size(); ++i) {
    torch::Tensor t = in.losses[i]->compute(ctx);
    SAELAB_CHECK(t.numel() == 1, Error, "loss '", in.losses[i]->name(), "' returned a tensor of shape ",
                 t.sizes(), "; a loss term must be a scalar");
    sums.terms[i] += t.item<double>();
    total = total.defined() ? total + t : t;
  }
  total.backward();
  const torch::Tensor counts = fire_counts(out.latents);
  sums.counts = sums.counts.defined() ? sums.counts + counts : counts;
  if (log) add_reconstruction(sums, target, out.reconstruction.detach());
}

void Trainer::Impl::end_loss_steps(const std::vector<std::vector<double>>& sums, std::int64_t parts) {
  for (std::size_t i = 0; i < in.losses.size(); ++i)
    in.losses[i]->end_step(sums[i], parts, TrainProgress{step, total_steps()});
}

void Trainer::Impl::train_step(bool log, StepMetrics& m) {
  const int world = group ? group->size() : 1;
  // [batch_size / world, d_in]: this rank's slice of the global batch (every rank reads the same
  // stream and takes its own rows of each batch).
  const Batch mine = next_batch(group ? group->rank() : 0, world);
  const std::int64_t parts = cfg.micro_batches, rows = cfg.batch_size;
  const torch::Tensor dead_mask = dead->dead_mask().to(device);
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  if (reducer) reducer->prepare(cat("the gradient all-reduce of step ", step + 1));
  StepSums sums;
  sums.terms.assign(in.losses.size(), 0.0);
  for (std::int64_t k = 0; k < parts; ++k) micro_step(part_of(mine, k, parts), dead_mask, log, sums);
  for (const auto& loss : in.losses) sums.loss_sums.push_back(loss->step_sums());
  if (reducer) {
    reducer->finish(parts);
  } else if (parts > 1) {
    torch::NoGradGuard no_grad;
    for (auto& p : params)
      if (p.grad().defined()) dist::mean_of_summed(p.mutable_grad(), parts);
  }
  if (group) reduce_over_ranks(sums, log);
  const double mean_over = static_cast<double>(parts * world);
  std::vector<std::pair<std::string, double>> terms;
  double loss_value = 0;
  for (std::size_t i = 0; i < in.losses.size(); ++i) {
    terms.emplace_back(in.losses[i]->name(), sums.terms[i] / mean_over);
    loss_value += terms.back().second;
  }
  if (!std::isfinite(loss_value))
    fail_non_finite("loss", loss_value, step + 1, total_steps(), terms, last_checkpoint);
  in.sae->before_optimizer_step();
  const double grad_norm = clip_grad_norm(params, cfg.grad_clip_norm);
  if (!std::isfinite(grad_norm))
    fail_non_finite("gradient norm", grad_norm, step + 1, total_steps(), terms, last_checkpoint);
  const double lr = schedule.at(step);
  adam->step(lr);
  in.sae->after_optimizer_step();
  end_loss_steps(sums.loss_sums, parts * world);
  dead->update(sums.counts, rows);
  density->update(step, sums.counts, rows);
  ++step;
  tokens += rows;
  if (!log) return;

  m.step = step;
  m.tokens = tokens;
  m.values["loss"] = loss_value;
  for (const auto& [name, v] : terms) m.values["loss." + name] = v;
  for (const auto& loss : in.losses)
    for (const auto& [key, v] : loss->metrics()) m.values[cat("loss.", loss->name(), ".", key)] = v;
  m.values["mse"] = sums.residual / double(rows);
  m.values["explained_variance"] = explained_variance(sums.residual, sums.sq_norm, sums.target_sum, rows);
  m.values["l0"] = sums.counts.sum().item<double>() / double(rows);
  m.values["dead_fraction"] = dead->dead_fraction();
  m.values["lr"] = lr;
  m.values["grad_norm"] = grad_norm;
}

}  // namespace saelab
