#pragma once
// The formulas of the loss plugins, each in one place, without coefficients or schedules (the
// plugins apply those). All return a 0-dim tensor; batch means are over the rows of x.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::loss_math {

// mean_b Σ_d (x̂ - x)²   ("sum over d, mean over batch"). x̂, x [batch, d_in].
SAELAB_API torch::Tensor mse(const torch::Tensor& xhat, const torch::Tensor& x);

// Σ_b |x̂_b - x_b|² / Σ_b |x_b - mean_b x|²: the fraction of the batch's variance left unexplained.
// Throws if the batch has no variance (one row, or identical rows): the ratio is undefined.
SAELAB_API torch::Tensor normalized_mse(const torch::Tensor& xhat, const torch::Tensor& x);

// Σ |z| over all entries. When z has no negative entry (every architecture here: ReLU-type
// latents) the gradient is the broadcast constant (a valid subgradient also at z = 0), which is
// never materialised as a [batch, d_sae] tensor; otherwise sign(z) * grad.
SAELAB_API torch::Tensor l1_abs_sum(const torch::Tensor& z);

// mean_b Σ_i |z_bi|. z [batch, d_sae].
SAELAB_API torch::Tensor l1(const torch::Tensor& z);

// mean_b Σ_i |z_bi| |W_dec,i|₂ (Anthropic, April 2024 update). Gradients reach z and W_dec.
SAELAB_API torch::Tensor l1_decoder_norm(const torch::Tensor& z, const torch::Tensor& W_dec);

// mean_b l0_b of a per-row differentiable L0 estimate [batch].
SAELAB_API torch::Tensor l0(const torch::Tensor& l0_estimate);

// Lp sparsity for p-annealing (dictionary_learning's PAnnealTrainer) of non-negative latents
// z [batch, d_sae], p > 0:   pth_root: mean_b (Σ_i z_bi^p)^(1/p)     otherwise: mean_b Σ_i z_bi^p.
// Entries at 0 contribute 0 and pass no gradient (d z^p / dz is infinite there when p < 1).
SAELAB_API torch::Tensor lp_sparsity(const torch::Tensor& z, double p, bool pth_root);

// Σ_m mean_b |x̂_m,b - x_b|² over the prefix reconstructions x̂_m [batch, d] (Matryoshka SAEs:
// every nested prefix of the latents reconstructs x on its own). 0 when there are none.
SAELAB_API torch::Tensor prefix_mse(const std::vector<torch::Tensor>& prefix_reconstructions,
                                    const torch::Tensor& x);

struct SAELAB_API AuxkResult {
  torch::Tensor loss;  // 0-dim, ≥ 0; exactly 0 (no graph) when no latent is dead
  std::int64_t num_dead = 0;
  std::int64_t k_aux = 0;  // latents used per row: min(k_aux requested, num_dead)
};

// The TopK paper's auxiliary loss (Gao et al. 2024, "Scaling and evaluating sparse autoencoders",
// appendix B.1): the residual e = x - x̂ (treated as a constant) is reconstructed from the k_aux
// largest pre-activations among dead latents, ê = Σ pre_i W_dec,i (no bias), and
//   loss = scale * mean_b |ê_b - e_b|² / (normalize ? mean_b |e_b - mean e|² : 1),
// scale = min(num_dead / k_aux, 1) (fewer dead latents, smaller loss; as SAELens does).
// pre [batch, d_sae], dead_mask [d_sae] bool, residual [batch, d_in], W_dec [d_sae, d_in].
SAELAB_API AuxkResult auxk(const torch::Tensor& pre, const torch::Tensor& dead_mask,
                           const torch::Tensor& residual, const torch::Tensor& W_dec, std::int64_t k_aux,
                           bool normalize);

}  // namespace saelab::loss_math
