// Registers Evaluator "standard".
#include <memory>

#include "saelab/core/plugin_api.hpp"
#include "standard_evaluator.hpp"

namespace {

void register_plugin(saelab::Registrar& r) {
  r.add<saelab::Evaluator>(
      "standard",
      "Explained variance, MSE, cosine similarity, L0, dead latents, feature density, CE loss "
      "score and KL with the SAE spliced into the model",
      saelab::standard_evaluator_schema(), [](const saelab::Options& o, const saelab::PluginContext&) {
        return std::make_unique<saelab::StandardEvaluator>(saelab::standard_eval_options(o));
      });
}

}  // namespace

SAELAB_PLUGIN("evaluator_standard", "1.0.0", "Standard SAE evaluation metrics", register_plugin)
