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
//   gate_l1          gated SAEs: mean_b Σ_i ReLU(π_gate)_i |W_dec,i|
//   gate_aux         gated SAEs: mean_b |x - x̂_gate|², x̂_gate through the frozen decoder
//   matryoshka       Matryoshka SAEs: Σ over the inner prefixes m of mean_b |x̂_{<m} - x|²
//   lp_anneal        p-annealed Lp penalty with an adapted coefficient (p_anneal.cpp)
// The reconstruction terms compare with LossContext::target(): x for an SAE, the output hook for a
// transcoder.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include <ATen/ATen.h>

#include "saelab/interfaces/loss.hpp"
#include "saelab/sae/loss_math.hpp"
#include "saelab/core/plugin_api.hpp"
#include "loss_options.hpp"
#include "p_anneal.hpp"

namespace saelab {
namespace {
using namespace losses;

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

const SaeOutput& gated_output(const LossContext& c, const char* loss) {
  if (!c.out.gate_activations.defined()) {
    throw ConfigError(cat("loss '", loss, "' needs the gate path of a gated SAE, which SAE architecture '",
                          c.sae.architecture(), "' does not have; use it with sae: gated"));
  }
  return c.out;
}

torch::Tensor matryoshka_term(const LossContext& c) {
  if (c.out.prefix_reconstructions.empty()) {
    throw ConfigError(
        cat("loss 'matryoshka' needs the prefix reconstructions of a Matryoshka SAE, which SAE "
            "architecture '",
            c.sae.architecture(),
            "' does not produce; use it with sae: matryoshka_batchtopk and at least two "
            "prefix sizes"));
  }
  return loss_math::prefix_mse(c.out.prefix_reconstructions, c.target());
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
  auto residual = (c.target() - c.out.reconstruction).detach();
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
           [](const LossContext& c) { return loss_math::mse(reconstruction(c), c.target()); });
  add_term(r, "normalized_mse", "squared error divided by the batch's squared deviation from its mean",
           coefficient_schema(1.0, false), false,
           [](const LossContext& c) { return loss_math::normalized_mse(reconstruction(c), c.target()); });
  add_term(r, "l1", "L1 sparsity penalty: Σ|z| per row, mean over the batch",
           coefficient_schema(5.0, true, 0.05), true,
           [](const LossContext& c) { return loss_math::l1(c.out.latents); });
  add_term(r, "l1_decoder_norm", "L1 penalty weighted by decoder row norms: Σ z_i |W_dec,i|",
           coefficient_schema(5.0, true, 0.05), true, [](const LossContext& c) {
             return loss_math::l1_decoder_norm(c.out.latents, c.sae.decoder_weight());
           });
  add_term(r, "l0", "L0 penalty through the SAE's straight-through L0 estimate (JumpReLU)",
           coefficient_schema(1.0, true, 0.0), true, l0_term);
  add_term(r, "gate_l1", "gated SAEs: L1 penalty on the gate path ReLU(π_gate), weighted by decoder norms",
           coefficient_schema(5.0, true, 0.05), true, [](const LossContext& c) {
             return loss_math::l1_decoder_norm(gated_output(c, "gate_l1").gate_activations,
                                               c.sae.decoder_weight());
           });
  add_term(r, "gate_aux",
           "gated SAEs: the gate path alone reconstructs the input through a frozen copy of the decoder",
           coefficient_schema(1.0, false), false, [](const LossContext& c) {
             return loss_math::mse(gated_output(c, "gate_aux").gate_reconstruction, c.target());
           });
  add_term(r, "matryoshka",
           "Matryoshka SAEs: every inner prefix of the latents reconstructs the input (sum of their "
           "squared errors; the full width is the mse term)",
           coefficient_schema(1.0, false), false, matryoshka_term);
  register_p_anneal(r);

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
