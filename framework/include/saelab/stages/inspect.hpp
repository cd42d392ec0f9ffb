#pragma once
// Opening a trained SAE with its model for interactive use (saelab heatmap, saelab features):
// from a run directory (config.resolved.yaml names the model, sae/ holds the SAE), or from a
// SAELens SAE directory together with an experiment file that names the model.
#include <filesystem>
#include <memory>
#include <string>

#include "saelab/core/export.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/features/scan.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/sae/load.hpp"
#include "saelab/steer/reference.hpp"

namespace saelab {

struct SAELAB_API Inspection {
  std::shared_ptr<ActivationSource> source;
  LoadedSae sae;
  std::string hook;
  bool prepend_bos = true;
  RowFilter rows;                          // the positions the run's harvest kept
  CorpusConfig corpus;                     // the experiment's corpus settings
  std::shared_ptr<ActivationStore> store;  // the experiment's store plugin
  std::filesystem::path store_dir;         // the run's store (may not exist)
  std::filesystem::path run_dir;           // empty for an SAE directory outside a run
};

// Where reference statistics come from, kept alive together.
struct SAELAB_API ReferenceRows {
  std::unique_ptr<ActivationReader> reader;
  std::unique_ptr<TokenBatches> tokens;
  std::unique_ptr<FeatureScan> scan;  // null when there is no reference
};

// run_or_sae: a run directory, a run's sae/ directory, or any SAELens directory (then `config`, an
// experiment file, names the model). Throws UsageError saying what was expected when neither fits.
SAELAB_API Inspection open_inspection(const std::filesystem::path& run_or_sae,
                                      const std::filesystem::path& config);

// Up to max_tokens reference rows: `text` (files or directories read with the experiment's corpus
// settings) run through the model when given; else the run's complete store, which needs no
// forward pass; else no scan.
SAELAB_API ReferenceRows open_reference_rows(Inspection& in, const std::vector<std::filesystem::path>& text,
                                             std::int64_t max_tokens);

// reference_statistics over open_reference_rows, logging where the rows came from; nullopt-like
// (rows == 0, max undefined) when there is no reference.
SAELAB_API LatentReference inspection_reference(Inspection& in,
                                                const std::vector<std::filesystem::path>& text,
                                                std::int64_t max_tokens,
                                                const std::vector<std::int64_t>& keep);

}  // namespace saelab
