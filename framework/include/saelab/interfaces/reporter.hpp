#pragma once
// Reporter: renders what an SAE's latents mean (top-activating contexts, histograms, logit effects).
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

class TokenBatches;

struct SAELAB_API ReportContext {
  SaeArchitecture& sae;
  ActivationSource* source;  // for decoding tokens and logit effects (may be null)
  std::string hook;
  TokenBatches* tokens;      // token sequences to scan for top activations (may be null)
  ActivationReader* reader;  // stored activations with provenance (may be null)
  nlohmann::json eval;       // eval.json contents if the evaluate stage ran (else null)
  std::filesystem::path out_dir;
  double input_scale = 1.0;       // multiply raw activations by this before the SAE (folded SAEs: 1)
  RowFilter rows;                 // positions left out of the statistics and examples (token scans)
  std::filesystem::path run_dir;  // the run's directory (metrics.jsonl); empty outside a run
  std::string config_text;        // the experiment as YAML, shown in the report (may be empty)
};

class SAELAB_API Reporter {
 public:
  static constexpr const char* kKind = "reporter";
  virtual ~Reporter() = default;
  virtual void write(ReportContext& ctx) = 0;
};

}  // namespace saelab
