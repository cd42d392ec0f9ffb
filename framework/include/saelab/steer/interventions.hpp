#pragma once
// Interventions at a hook: the edits that steering applies at every forward step of generation
// (ActivationSource::generate, GenerateOptions::edits) or to one run (run_with_replacement).
//
//   add       x' = x + α·v                          v: a latent's decoder row W_dec[f] or any
//                                                   direction (SAELens / Neuronpedia steering)
//   set       x' = x + decode(f') − decode(f)       f = encode(x), f' = f with chosen latents set
//                                                   to values (clamp; ablate sets 0)
// `set` keeps the SAE's error term x − decode(f), so only the chosen latents' contribution changes:
// setting a latent to its current value, or ablating one that is 0, changes nothing.
//
// Positions: All edits every position; Generated edits the last prompt position and every
// generated one, the positions whose outputs are sampled (the prompt's own activations stay).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

enum class EditPositions { All, Generated };

// 1 where an edit applies, else 0: [1, T, 1] float32 for an activation covering `span`.
SAELAB_API torch::Tensor edit_mask(std::int64_t T, const EditSpan& span, EditPositions where);

// act [1, T, d] + alpha · mask · direction [d].
SAELAB_API torch::Tensor add_direction(const torch::Tensor& act, const torch::Tensor& direction, double alpha,
                                       const torch::Tensor& mask);

struct SAELAB_API LatentSetting {
  std::int64_t latent = 0;
  double value = 0.0;  // the latent's new activation (0: ablate)
};

// act [1, T, d] -> act + mask · (decode(f') − decode(f)); f = encode(act), f' = f with each setting
// applied. The SAE takes raw activations (a run's saved SAE has its input scale folded in).
SAELAB_API torch::Tensor set_latents(SaeArchitecture& sae, const torch::Tensor& act,
                                     const std::vector<LatentSetting>& settings, const torch::Tensor& mask);

// The same as HookEdits. Throws UsageError for a direction of the wrong width or a latent outside
// [0, d_sae).
SAELAB_API HookEdit add_direction_edit(const std::string& hook, torch::Tensor direction, double alpha,
                                       EditPositions where);
SAELAB_API HookEdit set_latents_edit(const std::string& hook, std::shared_ptr<SaeArchitecture> sae,
                                     std::vector<LatentSetting> settings, EditPositions where);

}  // namespace saelab
