#pragma once
// Opening a trained SAE with its model for interactive use (saelab heatmap, saelab features):
// from a run directory (config.resolved.yaml names the model, sae/ holds the SAE), or from a
// SAELens SAE directory together with an experiment file that names the model.
#include <filesystem>
#include <memory>
#include <string>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/sae/load.hpp"

namespace saelab {

struct SAELAB_API Inspection {
  std::shared_ptr<ActivationSource> source;
  LoadedSae sae;
  std::string hook;
  bool prepend_bos = true;
};

// run_or_sae: a run directory, a run's sae/ directory, or any SAELens directory (then `config`, an
// experiment file, names the model). Throws UsageError saying what was expected when neither fits.
SAELAB_API Inspection open_inspection(const std::filesystem::path& run_or_sae,
                                      const std::filesystem::path& config);

}  // namespace saelab
