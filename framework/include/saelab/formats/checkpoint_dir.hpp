#pragma once
// Checkpoint directories: the trainer's crash-safe snapshots. Tensors go to safetensors, everything
// else to JSON; nothing is ever pickled.
//
// <root>/
//   step-000000001000/            one committed checkpoint per step (12-digit, zero-padded)
//     <name>.safetensors          one per Checkpoint::tensors entry
//     <name>.json                 one per Checkpoint::json entry
//     manifest.json               {"format": "saelab-checkpoint", "version": 1, "step": 1000,
//                                  "files": {"<file>": {"sha256": "<64 hex>", "size": <bytes>}, ...}}
//     COMMITTED                   the SHA-256 of manifest.json, written last
//   tmp-000000002000/             a write in progress (or one a crash interrupted): never read
//
// Writing: files go to tmp-<step>, each is fsynced, then manifest.json, then COMMITTED, then the
// directory is fsynced and renamed to step-<step>. A reader therefore sees only complete
// checkpoints; a checkpoint is valid when COMMITTED matches manifest.json and every listed file has
// the listed size and SHA-256. One writer per root at a time.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/formats/safetensors.hpp"

namespace saelab {

struct SAELAB_API Checkpoint {
  std::int64_t step = 0;
  // File stem -> contents. Stems are [A-Za-z0-9_.-]+ ("sae", "optimizer", "trainer_state").
  std::map<std::string, safetensors::TensorMap> tensors;  // written as <stem>.safetensors
  std::map<std::string, nlohmann::json> json;             // written as <stem>.json
};

struct SAELAB_API CheckpointWriteResult {
  std::filesystem::path dir;                  // <root>/step-<step>
  std::vector<std::filesystem::path> pruned;  // older checkpoints removed by keep_last
};

struct SAELAB_API LatestCheckpoint {
  std::optional<std::filesystem::path> dir;  // empty when no valid checkpoint exists
  std::int64_t step = -1;
  std::vector<std::string> warnings;  // one per newer checkpoint that was skipped, and why
};

// Writes `ckpt` under root (created if needed), removes leftover tmp-* directories, then keeps only
// the newest keep_last committed checkpoints (keep_last >= 2, so a corrupt newest one always has a
// predecessor). An existing step-<step> (a run resumed from an older checkpoint) is replaced.
SAELAB_API CheckpointWriteResult write_checkpoint(const std::filesystem::path& root, const Checkpoint& ckpt,
                                                  int keep_last);

// The newest valid checkpoint; corrupt or uncommitted ones are skipped with a warning each.
// Verifies every file's SHA-256, so it reads each candidate once in full.
SAELAB_API LatestCheckpoint find_latest_valid(const std::filesystem::path& root);

// Empty when `dir` is a valid committed checkpoint, else what is wrong with it.
SAELAB_API std::optional<std::string> verify_checkpoint(const std::filesystem::path& dir);

// Verifies, then reads every file of a checkpoint. Throws FormatError naming the file on failure.
SAELAB_API Checkpoint load_checkpoint(const std::filesystem::path& dir);

// "step-000000001000" for 1000.
SAELAB_API std::string checkpoint_dir_name(std::int64_t step);

}  // namespace saelab
