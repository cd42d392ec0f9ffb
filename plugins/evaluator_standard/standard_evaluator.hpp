#pragma once
// Evaluator "standard": reconstruction, sparsity and downstream (CE / KL) metrics of an SAE.
//
// With a source and token sequences it splices the SAE into the model (SAELens's evaluation): per
// batch of sequences, one clean run, one with the hook replaced by the SAE's reconstruction and one
// with the hook zeroed. Reconstruction and sparsity metrics use the clean activations the spliced
// run sees. With stored activations only, it computes reconstruction and sparsity metrics and
// reports the downstream ones as null with the reason. Formulas: saelab/eval/metrics.hpp.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "saelab/interfaces/evaluator.hpp"
#include "saelab/core/options.hpp"

namespace saelab {

struct StandardEvalOptions {
  std::int64_t batches = 10;    // token batches, or stored-activation batches
  std::int64_t batch_size = 8;  // sequences per token batch
  bool exclude_bos = true;      // positions holding the BOS token are not evaluated
  bool per_latent = true;       // write every latent's firing count
};

OptionSchema standard_evaluator_schema();
StandardEvalOptions standard_eval_options(const Options& o);

class StandardEvaluator : public Evaluator {
 public:
  explicit StandardEvaluator(StandardEvalOptions opts) : opts_(opts) {}
  nlohmann::json evaluate(EvalContext& ctx) override;

 private:
  nlohmann::json evaluate_spliced(EvalContext& ctx);
  nlohmann::json evaluate_stored(EvalContext& ctx, const std::string& why_no_downstream);
  StandardEvalOptions opts_;
};

}  // namespace saelab
