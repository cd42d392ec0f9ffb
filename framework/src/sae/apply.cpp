#include "saelab/sae/apply.hpp"

#include "saelab/core/error.hpp"

namespace saelab {

torch::Device module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return torch::kCPU;
}

void check_hook_width(const ActivationSource& source, const std::string& hook, std::int64_t d_in,
                      const std::string& who) {
  const auto& info = source.info();
  auto it = info.hooks.find(hook);
  if (it == info.hooks.end()) {
    std::string names;
    for (const auto& entry : info.hooks) names += (names.empty() ? "" : ", ") + entry.first;
    throw Error(cat(who, ": hook '", hook, "' is not a hook of model '", info.model_id,
                    "'; available hooks: ", names));
  }
  SAELAB_CHECK(it->second == d_in, Error, who, ": hook '", hook, "' of model '", info.model_id,
               "' has width ", it->second, " but the SAE's d_in is ", d_in,
               "; use the SAE with the hook it was trained on");
}

torch::Tensor encode_sae(SaeArchitecture& sae, const torch::Tensor& x, double input_scale) {
  const SaeShape shape = sae.shape();
  SAELAB_CHECK(x.dim() == 2 && x.size(1) == shape.d_in, Error, "SAE '", sae.architecture(),
               "' takes activations [n, ", shape.d_in, "] but got ", x.sizes(),
               "; the hook's width must equal the SAE's d_in");
  SAELAB_CHECK(input_scale > 0, Error, "input_scale must be > 0; got ", input_scale);
  auto xin = x.to(module_device(sae), torch::kFloat32);
  if (input_scale != 1.0) xin = xin * input_scale;
  auto latents = sae.encode(xin);
  SAELAB_CHECK(latents.dim() == 2 && latents.size(0) == x.size(0) && latents.size(1) == shape.d_sae, Error,
               "SAE '", sae.architecture(), "' encode returned ", latents.sizes(), "; expected [", x.size(0),
               ", ", shape.d_sae, "]");
  return latents;
}

SaeApplied apply_sae(SaeArchitecture& sae, const torch::Tensor& x, double input_scale) {
  SaeApplied out;
  out.latents = encode_sae(sae, x, input_scale);
  auto recon = sae.decode(out.latents);
  SAELAB_CHECK(recon.dim() == 2 && recon.size(0) == x.size(0) && recon.size(1) == x.size(1), Error, "SAE '",
               sae.architecture(), "' decode returned ", recon.sizes(), "; expected ", x.sizes());
  if (input_scale != 1.0) recon = recon / input_scale;
  out.reconstruction = recon.to(x.device(), x.scalar_type());
  return out;
}

SaeApplied apply_transcoder(SaeArchitecture& sae, const torch::Tensor& x) {
  const SaeShape shape = sae.shape();
  SaeApplied out;
  out.latents = encode_sae(sae, x, 1.0);
  auto y = sae.forward(x.to(module_device(sae), torch::kFloat32)).reconstruction;
  SAELAB_CHECK(y.dim() == 2 && y.size(0) == x.size(0) && y.size(1) == shape.out(), Error, "transcoder '",
               sae.architecture(), "' returned ", y.sizes(), "; expected [", x.size(0), ", ", shape.out(),
               "]");
  out.reconstruction = y.to(x.device(), x.scalar_type());
  return out;
}

}  // namespace saelab
