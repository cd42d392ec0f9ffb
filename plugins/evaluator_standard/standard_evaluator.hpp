#pragma once
// Evaluator "standard": reconstruction, sparsity and downstream (CE / KL) metrics of an SAE.
//
// With a source and token sequences it splices the SAE into the model (SAELens's evaluation): per
// batch of sequences, one clean run, one with the hook replaced by the SAE's reconstruction and one
// with the hook zeroed, and (options) one with the hook mean-ablated and one with the SAE plus its
// error term. Reconstruction and sparsity metrics use the clean activations the spliced run sees.
// When the source knows its planted features (GroundTruth, the synthetic source), eval.json also
// gets their recovery (saelab/eval/recovery.hpp). With stored activations only, it computes reconstruction
// and sparsity metrics and reports the downstream ones as null with the reason. Formulas:
// saelab/eval/metrics.hpp. With probe_tasks, also SAEBench's sparse probing (sparse_probing.hpp).
#include <cstdint>

#include <nlohmann/json.hpp>

#include "saelab/core/options.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "sparse_probing.hpp"

namespace saelab {

struct StandardEvalOptions {
  std::int64_t batches = 10;     // token batches, or stored-activation batches
  std::int64_t batch_size = 8;   // sequences per token batch
  bool exclude_bos = true;       // positions holding the BOS token are not evaluated
  bool per_latent = true;        // write every latent's firing count
  bool mean_ablation = true;     // also the mean-ablated run
  bool error_term = true;        // also the SAE-plus-error-term run
  SparseProbingOptions probing;  // tasks empty: no sparse probing
};

OptionSchema standard_evaluator_schema();
StandardEvalOptions standard_eval_options(const Options& o);

// The positions every metric evaluates: [b, s] bool, false on BOS (exclude_bos) and on the
// run's excluded positions.
torch::Tensor evaluated_positions(const torch::Tensor& tokens, const SourceInfo& info, bool exclude_bos,
                                  const RowFilter& rows);

class StandardEvaluator : public Evaluator {
 public:
  explicit StandardEvaluator(StandardEvalOptions opts) : opts_(opts) {}
  nlohmann::json evaluate(EvalContext& ctx) override;

 private:
  nlohmann::json evaluate_spliced(EvalContext& ctx);
  struct Spliced;
  void evaluate_batch(EvalContext& ctx, const torch::Tensor& tokens, Spliced& acc);
  void add_probing(EvalContext& ctx, nlohmann::json& j);
  nlohmann::json evaluate_stored(EvalContext& ctx, const std::string& why_no_downstream);
  StandardEvalOptions opts_;
};

}  // namespace saelab
