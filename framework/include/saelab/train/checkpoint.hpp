#pragma once
// Training checkpoints: everything a resumed run needs to continue bit for bit.
//
// Stored with the checkpoint-directory primitives (saelab/formats/checkpoint_dir.hpp: temp directory,
// fsync, rename, manifest.json with per-file SHA-256 and size, COMMITTED marker, keep the last K).
// Each checkpoint <run_dir>/checkpoints/step-<12-digit step>/ holds:
//   state.safetensors   module.<name>        every parameter and buffer of the SAE module
//                       adam.m.<p>, adam.v.<p>, adam.t    optimizer moments and step count
//                       dead.rows_since_fired, density.counts, density.rows   latent statistics
//   trainer.json        {"format": "saelab-train-checkpoint", "version": 1, "step", "tokens",
//                        "total_steps", "input_scale", "output_scale" (transcoders' targets; 1
//                        otherwise), "lr", "cursor" (ActivationReader::cursor), "target_cursor"
//                        (the target reader's, or null), "losses" (Loss::state() of stateful terms),
//                        "config_hash", "config" (what was hashed), "rng": {"trainer", "global"}
//                        (hex of the generators' states), "world_size" (ranks that trained it;
//                        a resume on another count continues the same global batches),
//                        "saelab_version"}
// Checkpoints are untrusted on load: a bad one is reported (what, which file) and skipped.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API TrainCheckpoint {
  std::int64_t step = 0;
  nlohmann::json meta;  // trainer.json (includes "step")
  std::map<std::string, torch::Tensor> tensors;
};

struct SAELAB_API FoundCheckpoint {
  std::filesystem::path dir;
  TrainCheckpoint checkpoint;
};

using WarningFn = std::function<void(const std::string&)>;

// Writes checkpoints/step-<N> and prunes all but the newest `keep`. Returns the directory.
SAELAB_API std::filesystem::path write_train_checkpoint(const std::filesystem::path& checkpoints,
                                                        const TrainCheckpoint& ckpt, std::int64_t keep);

// Checkpoint directories (step-<N>, committed or not), newest (highest step) first. Unverified.
SAELAB_API std::vector<std::filesystem::path> list_train_checkpoints(
    const std::filesystem::path& checkpoints);

// Loads and verifies one checkpoint directory; throws FormatError naming the file and the problem.
SAELAB_API TrainCheckpoint load_train_checkpoint(const std::filesystem::path& dir);

// The newest checkpoint that verifies; each one skipped is reported through `warn`.
SAELAB_API std::optional<FoundCheckpoint> load_newest_train_checkpoint(
    const std::filesystem::path& checkpoints, const WarningFn& warn);

}  // namespace saelab
