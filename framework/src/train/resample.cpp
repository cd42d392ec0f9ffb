#include <algorithm>
#include <string>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/train/resample.hpp"

namespace saelab {

namespace {

torch::Tensor find_param(SaeArchitecture& sae, const std::string& name) {
  auto params = sae.named_parameters(/*recurse=*/true);
  if (const torch::Tensor* p = params.find(name)) return *p;
  std::string have;
  for (const auto& item : params) have += (have.empty() ? "" : ", ") + item.key();
  throw Error(cat("resampling needs the SAE parameter '", name, "' (", sae.architecture(), " has: ", have,
                  "); disable resample_steps for this architecture"));
}

// Streaming weighted sampling without replacement: keep the k rows with the largest keys
// log(u) / w. Efraimidis & Spirakis (2006): equivalent to drawing k times ∝ w without replacement.
struct WeightedReservoir {
  std::int64_t k;
  torch::Tensor keys;  // [<= k] float64
  torch::Tensor rows;  // [<= k, d_in]

  void offer(const torch::Tensor& x, const torch::Tensor& weights, at::Generator& gen) {
    torch::Tensor u = torch::rand({x.size(0)}, gen, torch::kFloat64).clamp_min_(1e-300);
    // The tiny offset lets rows with zero error be drawn when nothing else is left.
    torch::Tensor new_keys = u.log_() / (weights + 1e-30);
    torch::Tensor all_keys = keys.defined() ? torch::cat({keys, new_keys}) : new_keys;
    torch::Tensor all_rows = rows.defined() ? torch::cat({rows, x}) : x;
    const std::int64_t keep = std::min<std::int64_t>(k, all_keys.size(0));
    auto top = all_keys.topk(keep, /*dim=*/0, /*largest=*/true, /*sorted=*/true);
    keys = std::get<0>(top);
    rows = all_rows.index_select(0, std::get<1>(top));
  }
};

}  // namespace

ResampleResult resample_dead_latents(SaeArchitecture& sae, Adam& adam, const torch::Tensor& dead_mask,
                                     const std::function<torch::Tensor()>& next_inputs, std::int64_t inputs,
                                     double encoder_scale, at::Generator& gen) {
  ResampleResult result;
  torch::Tensor dead = dead_mask.to(torch::kCPU).nonzero().flatten();
  if (dead.numel() == 0) return result;
  torch::Tensor W_enc = find_param(sae, "W_enc");  // [d_in, d_sae]

  torch::NoGradGuard no_grad;
  const bool was_training = sae.is_training();
  sae.eval();  // scoring must not update training statistics (e.g. BatchTopK thresholds)
  WeightedReservoir reservoir{dead.numel(), {}, {}};
  while (result.inputs_scored < inputs) {
    torch::Tensor x = next_inputs();
    x = x.narrow(0, 0, std::min<std::int64_t>(x.size(0), inputs - result.inputs_scored));
    torch::Tensor error = (x - sae.forward(x).reconstruction).pow(2).sum(1).to(torch::kFloat64);
    reservoir.offer(x, error.pow(2).to(torch::kCPU), gen);
    result.inputs_scored += x.size(0);
  }
  sae.train(was_training);

  const std::int64_t m = reservoir.rows.size(0);
  torch::Tensor idx = dead.narrow(0, 0, m);
  torch::Tensor alive = dead_mask.logical_not().to(W_enc.device());
  torch::Tensor enc_norms = W_enc.norm(2, {0});  // [d_sae]
  result.mean_alive_encoder_norm =
      alive.any().item<bool>() ? enc_norms.masked_select(alive).mean().item<double>() : 1.0;

  // The architecture writes the rows itself (it knows its decoder-norm convention).
  sae.reinitialize_latents(idx, reservoir.rows.to(W_enc.device(), W_enc.scalar_type()),
                           encoder_scale * result.mean_alive_encoder_norm);
  // The moments of every per-latent slice start again: decoder rows, encoder columns and every
  // [d_sae] vector (b_enc; a gated SAE's b_mag and r_mag).
  const std::int64_t d_sae = sae.shape().d_sae;
  for (const auto& p : sae.named_parameters(/*recurse=*/true)) {
    const torch::Tensor& t = p.value();
    if (p.key() == "W_dec")
      adam.reset_slices(p.key(), 0, idx);
    else if (p.key() == "W_enc")
      adam.reset_slices(p.key(), 1, idx);
    else if (t.dim() == 1 && t.size(0) == d_sae)
      adam.reset_slices(p.key(), 0, idx);
  }
  result.resampled = m;
  result.latents = idx.to(torch::kCPU);
  return result;
}

}  // namespace saelab
