#include <cmath>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/train/latent_stats.hpp"

#include "sae/fused_kernels.hpp"

namespace saelab {

namespace {
const torch::Tensor& find_state(const std::map<std::string, torch::Tensor>& tensors, const std::string& key,
                                at::IntArrayRef shape, const std::string& where) {
  auto it = tensors.find(key);
  SAELAB_CHECK(it != tensors.end(), FormatError, where, ": tensor '", key, "' is missing");
  SAELAB_CHECK(it->second.sizes() == shape, FormatError, where, ": tensor '", key, "' has shape ",
               it->second.sizes(), ", expected ", shape);
  return it->second;
}
}  // namespace

torch::Tensor fire_counts(const torch::Tensor& latents) {
  torch::NoGradGuard no_grad;
  const torch::Tensor z = latents.detach();
  if (z.dim() == 2 && fused::fusable({&z})) return fused::count_nonzero_columns(z);
  return z.ne(0).sum(0, /*keepdim=*/false, torch::kInt64);
}

DeadLatentTracker::DeadLatentTracker(std::int64_t d_sae, std::int64_t window_rows)
    : rows_since_fired_(torch::zeros({d_sae}, torch::kInt64)), window_(window_rows) {
  SAELAB_CHECK(window_rows > 0, Error, "dead-latent window must be > 0 rows, got ", window_rows);
}

void DeadLatentTracker::update(const torch::Tensor& counts, std::int64_t rows) {
  torch::Tensor fired = counts.to(torch::kCPU).gt(0);
  rows_since_fired_.add_(rows).masked_fill_(fired, 0);
}

torch::Tensor DeadLatentTracker::dead_mask() const {
  return rows_since_fired_.ge(window_);
}

std::int64_t DeadLatentTracker::dead_count() const {
  return dead_mask().sum().item<std::int64_t>();
}

double DeadLatentTracker::dead_fraction() const {
  return double(dead_count()) / double(std::max<std::int64_t>(1, rows_since_fired_.numel()));
}

void DeadLatentTracker::revive(const torch::Tensor& index) {
  rows_since_fired_.index_fill_(0, index.to(torch::kCPU), 0);
}

std::map<std::string, torch::Tensor> DeadLatentTracker::state() const {
  return {{"dead.rows_since_fired", rows_since_fired_}};
}

void DeadLatentTracker::load_state(const std::map<std::string, torch::Tensor>& tensors,
                                   const std::string& where) {
  rows_since_fired_.copy_(find_state(tensors, "dead.rows_since_fired", rows_since_fired_.sizes(), where));
}

FeatureDensity::FeatureDensity(std::int64_t d_sae, std::int64_t first_step)
    : counts_(torch::zeros({d_sae}, torch::kInt64)), first_step_(first_step) {}

void FeatureDensity::update(std::int64_t step, const torch::Tensor& counts, std::int64_t rows) {
  if (step < first_step_) return;
  counts_.add_(counts.to(torch::kCPU));
  rows_ += rows;
}

torch::Tensor FeatureDensity::log10_density() const {
  // The 1e-10 keeps never-fired latents finite, as SAELens does.
  torch::Tensor density = counts_.to(torch::kFloat64) / double(std::max<std::int64_t>(1, rows_));
  return (density + 1e-10).log10().to(torch::kFloat32);
}

std::map<std::string, torch::Tensor> FeatureDensity::state() const {
  return {{"density.counts", counts_}, {"density.rows", torch::tensor({rows_}, torch::kInt64)}};
}

void FeatureDensity::load_state(const std::map<std::string, torch::Tensor>& tensors,
                                const std::string& where) {
  counts_.copy_(find_state(tensors, "density.counts", counts_.sizes(), where));
  rows_ = find_state(tensors, "density.rows", {1}, where).item<std::int64_t>();
}

}  // namespace saelab
