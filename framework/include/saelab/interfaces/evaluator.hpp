#pragma once
// Evaluator: measures a trained SAE (L0, explained variance, CE loss recovered, dead latents, ...).
#include <filesystem>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

class TokenBatches;
class EvalCache;
struct CorpusConfig;

struct SAELAB_API EvalContext {
  SaeArchitecture& sae;
  ActivationSource* source;              // null when only stored activations are available (no CE metrics)
  std::string hook;                      // the SAE's input hook
  TokenBatches* tokens;                  // held-out token sequences for spliced evaluation (may be null)
  ActivationReader* reader;              // held-out activations (may be null)
  double input_scale = 1.0;              // multiply raw activations by this before the SAE (folded SAEs: 1)
  RowFilter rows;                        // positions left out of every metric and kept clean when spliced
  const CorpusConfig* corpus = nullptr;  // the run's corpus, read per document (sparse probing)
  EvalCache* cache = nullptr;            // SAE-independent model runs shared across a sweep (may be null)
  // Transcoders: the hook whose activation the SAE's output replaces (its MLP's output), read from
  // `hook`'s activation of the same pass; empty for an SAE, which replaces `hook` itself.
  std::string target_hook = {};
};

class SAELAB_API Evaluator {
 public:
  static constexpr const char* kKind = "evaluator";
  virtual ~Evaluator() = default;
  // Returns the metrics as a JSON object; written to eval.json by the framework.
  virtual nlohmann::json evaluate(EvalContext& ctx) = 0;
};

}  // namespace saelab
