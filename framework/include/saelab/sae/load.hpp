#pragma once
// Loading a saved SAE directory (SAELens format, formats/sae_dir.hpp) into the SAE plugin that handles its
// cfg.json "architecture": for evaluation, reports and steering, whether saelab trained it or not.
#include <filesystem>
#include <memory>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/core/registry.hpp"
#include "saelab/formats/sae_dir.hpp"

namespace saelab {

struct SAELAB_API LoadedSae {
  std::shared_ptr<SaeArchitecture> sae;  // float32, on ctx.device
  SaeMeta meta;                          // the cfg.json keys saelab does not model as options
};

// Throws FormatError for a malformed directory and Error naming the architecture and the loaded
// SAE plugins when none handles it.
SAELAB_API LoadedSae load_sae(const Registry& registry, const std::filesystem::path& dir,
                              const PluginContext& ctx);

}  // namespace saelab
