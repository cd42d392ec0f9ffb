#include "saelab/steer/interventions.hpp"

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/sae/apply.hpp"

namespace saelab {

torch::Tensor edit_mask(std::int64_t T, const EditSpan& span, EditPositions where) {
  if (where == EditPositions::All) return at::ones({1, T, 1}, torch::kFloat32);
  const auto pos = at::arange(span.first, span.first + T, at::TensorOptions(torch::kFloat32));
  return pos.ge(static_cast<double>(span.prompt_length - 1)).to(torch::kFloat32).view({1, T, 1});
}

torch::Tensor add_direction(const torch::Tensor& act, const torch::Tensor& direction, double alpha,
                            const torch::Tensor& mask) {
  const auto dir = direction.to(act.device(), act.scalar_type()).view({1, 1, -1});  // [1, 1, d]
  return act + mask.to(act.device(), act.scalar_type()) * dir * alpha;
}

torch::Tensor set_latents(SaeArchitecture& sae, const torch::Tensor& act,
                          const std::vector<LatentSetting>& settings, const torch::Tensor& mask) {
  const auto d = act.size(-1);
  const auto x = act.reshape({-1, d});  // [T, d]
  EvalModeGuard eval(sae);
  const auto f = encode_sae(sae, x, 1.0);  // [T, d_sae]
  auto f_set = f.clone();
  for (const LatentSetting& s : settings) f_set.select(1, s.latent).fill_(s.value);
  const auto delta = (sae.decode(f_set) - sae.decode(f)).to(act.device(), act.scalar_type());  // [T, d]
  return act + mask.to(act.device(), act.scalar_type()) * delta.view(act.sizes());
}

HookEdit add_direction_edit(const std::string& hook, torch::Tensor direction, double alpha,
                            EditPositions where) {
  SAELAB_CHECK(direction.defined() && direction.dim() == 1, UsageError, "steering direction for hook '", hook,
               "' must be a vector [d], got ", direction.defined() ? direction.sizes() : at::IntArrayRef{});
  direction = direction.to(torch::kFloat32).contiguous();
  return {hook, [direction, alpha, where, hook](const torch::Tensor& act, const EditSpan& span) {
            SAELAB_CHECK(act.size(-1) == direction.size(0), UsageError, "steering direction of width ",
                         direction.size(0), " cannot be added at hook '", hook, "', whose width is ",
                         act.size(-1));
            return add_direction(act, direction, alpha, edit_mask(act.size(1), span, where));
          }};
}

HookEdit set_latents_edit(const std::string& hook, std::shared_ptr<SaeArchitecture> sae,
                          std::vector<LatentSetting> settings, EditPositions where) {
  SAELAB_CHECK(sae, Error, "set_latents_edit needs an SAE");
  const auto d_sae = sae->shape().d_sae;
  for (const LatentSetting& s : settings)
    SAELAB_CHECK(s.latent >= 0 && s.latent < d_sae, UsageError, "latent ", s.latent,
                 " does not exist: the SAE has latents 0 to ", d_sae - 1);
  return {hook, [sae, settings, where](const torch::Tensor& act, const EditSpan& span) {
            torch::NoGradGuard no_grad;
            return set_latents(*sae, act, settings, edit_mask(act.size(1), span, where));
          }};
}

}  // namespace saelab
