// The training-objective terms. Each formula lives in saelab/sae/loss_math.hpp; a plugin here only
// multiplies it by its coefficient and, for the sparsity penalties, a linear warm-up of the
// coefficient over the first `warmup_fraction` of training (Anthropic, April 2024 update).
//
//   mse              mean_b |x̂ - x|²
//   normalized_mse   Σ_b |x̂ - x|² / Σ_b |x - mean x|²
//   l1               mean_b Σ_i |z_i|
//   l1_decoder_norm  mean_b Σ_i |z_i| |W_dec,i|
//   auxk             TopK auxiliary loss on dead latents (needs the trainer's dead mask)
//   l0               mean_b of the SAE's differentiable L0 estimate (JumpReLU)
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include <ATen/ATen.h>

#include "saelab/interfaces/loss.hpp"
#include "saelab/sae/loss_math.hpp"
#include "saelab/core/plugin_api.hpp"

namespace saelab {
namespace {

// coefficient · min(1, progress / warmup_fraction); warmup_fraction 0 = no warm-up.
double scheduled(double coefficient, double warmup_fraction, const TrainProgress& p) {
  if (warmup_fraction <= 0) return coefficient;
  return coefficient * std::min(1.0, p.fraction() / warmup_fraction);
}

using Formula = std::function<torch::Tensor(const LossContext&)>;

class TermLoss : public Loss {
 public:
  TermLoss(std::string name, double coefficient, double warmup_fraction, Formula f)
      : name_(std::move(name)), coefficient_(coefficient), warmup_(warmup_fraction), formula_(std::move(f)) {}
  std::string name() const override { return name_; }
  torch::Tensor compute(const LossContext& ctx) override {
    const double c = scheduled(coefficient_, warmup_, ctx.progress);
    return formula_(ctx) * c;
  }

 private:
  std::string name_;
  double coefficient_;
  double warmup_;
  Formula formula_;
};

OptionSchema coefficient_schema(double def, bool with_warmup, double warmup_def = 0.0) {
  OptionSchema s;
  s.real("coefficient", def, "weight of this term in the training loss").at_least(0);
  if (with_warmup) {
    s.real("warmup_fraction", warmup_def,
           "the coefficient rises linearly from 0 over this fraction of the training steps "
           "(0 = constant)")
        .at_least(0)
        .at_most(1);
  }
  return s;
}

double checked_coefficient(const Options& o) {
  const double c = o.real("coefficient");
  if (!(c >= 0) || !std::isfinite(c))
    o.fail("coefficient", cat("coefficient = ", c, " must be finite and ≥ 0"));
  return c;
}

double checked_warmup(const Options& o) {
  const double w = o.real("warmup_fraction");
  if (!(w >= 0 && w <= 1)) o.fail("warmup_fraction", cat("warmup_fraction = ", w, " must be in [0, 1]"));
  return w;
}

const torch::Tensor& reconstruction(const LossContext& c) {
  return c.out.reconstruction;
}

torch::Tensor l0_term(const LossContext& c) {
  if (!c.out.l0_estimate.defined()) {
    throw ConfigError(cat("loss 'l0' needs a differentiable L0 estimate, which SAE architecture '",
                          c.sae.architecture(),
                          "' does not provide; use l0 with the jumprelu "
                          "SAE, or l1 / l1_decoder_norm with this one"));
  }
  return loss_math::l0(c.out.l0_estimate);
}

struct AuxkOptions {
  double coefficient;
  std::int64_t k_aux;  // 0 = auto: d_in / 2
  bool normalize;
};

torch::Tensor auxk_term(const LossContext& c, const AuxkOptions& a) {
  SAELAB_CHECK(c.dead_mask.defined(), ConfigError,
               "loss 'auxk' needs the trainer's dead-latent mask, which is not available here");
  const std::int64_t k_aux = a.k_aux > 0 ? a.k_aux : std::max<std::int64_t>(1, c.x.size(1) / 2);
  auto residual = (c.x - c.out.reconstruction).detach();
  return loss_math::auxk(c.out.pre_activations, c.dead_mask, residual, c.sae.decoder_weight(), k_aux,
                         a.normalize)
      .loss;
}

template <class F>
void add_term(Registrar& r, const std::string& name, const std::string& description, OptionSchema schema,
              bool with_warmup, F formula) {
  r.add<Loss>(name, description, std::move(schema),
              [name, with_warmup, formula](const Options& o, const PluginContext&) {
                return std::make_unique<TermLoss>(name, checked_coefficient(o),
                                                  with_warmup ? checked_warmup(o) : 0.0, Formula(formula));
              });
}

void register_plugin(Registrar& r) {
  add_term(r, "mse", "reconstruction error: squared L2 summed over d_in, mean over the batch",
           coefficient_schema(1.0, false), false,
           [](const LossContext& c) { return loss_math::mse(reconstruction(c), c.x); });
  add_term(r, "normalized_mse", "squared error divided by the batch's squared deviation from its mean",
           coefficient_schema(1.0, false), false,
           [](const LossContext& c) { return loss_math::normalized_mse(reconstruction(c), c.x); });
  add_term(r, "l1", "L1 sparsity penalty: Σ|z| per row, mean over the batch",
           coefficient_schema(5.0, true, 0.05), true,
           [](const LossContext& c) { return loss_math::l1(c.out.latents); });
  add_term(r, "l1_decoder_norm", "L1 penalty weighted by decoder row norms: Σ z_i |W_dec,i|",
           coefficient_schema(5.0, true, 0.05), true, [](const LossContext& c) {
             return loss_math::l1_decoder_norm(c.out.latents, c.sae.decoder_weight());
           });
  add_term(r, "l0", "L0 penalty through the SAE's straight-through L0 estimate (JumpReLU)",
           coefficient_schema(1.0, true, 0.0), true, l0_term);

  OptionSchema auxk_schema = coefficient_schema(1.0 / 32.0, false);
  auxk_schema.integer("k_aux", -1, "dead latents used per row; auto: d_in / 2").at_least(1).autoable();
  auxk_schema.boolean("normalize", true, "divide by the residual's squared deviation from its batch mean");
  r.add<Loss>("auxk", "TopK auxiliary loss: dead latents reconstruct the residual x - x̂", auxk_schema,
              [](const Options& o, const PluginContext&) {
                AuxkOptions a{checked_coefficient(o), o.is_auto("k_aux") ? 0 : o.integer("k_aux"),
                              o.boolean("normalize")};
                if (a.k_aux < 0) a.k_aux = 0;  // auto
                return std::make_unique<TermLoss>("auxk", a.coefficient, 0.0,
                                                  [a](const LossContext& c) { return auxk_term(c, a); });
              });
}

}  // namespace
}  // namespace saelab

SAELAB_PLUGIN("losses", "0.1.0", "SAE training loss terms", saelab::register_plugin)
