// Trainer checkpoints: a committed checkpoint directory (manifest.json with every file's SHA-256
// and size, COMMITTED) holding trainer.json and state.safetensors. The target writes the hashes
// itself, as an attacker can, so the fuzzer gets past the integrity check into the parsers.
// Input: trainer.json PART state.safetensors [PART manifest.json, used verbatim]
#include <nlohmann/json.hpp>

#include "../fuzz_support.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/formats/checkpoint_dir.hpp"
#include "saelab/train/checkpoint.hpp"

namespace {
std::string manifest_for(const std::vector<std::string>& parts) {
  if (parts.size() > 2) return parts[2];
  nlohmann::json files = nlohmann::json::object();
  files["trainer.json"] = {{"sha256", saelab::sha256_hex(parts[0])}, {"size", parts[0].size()}};
  if (parts.size() > 1)
    files["state.safetensors"] = {{"sha256", saelab::sha256_hex(parts[1])}, {"size", parts[1].size()}};
  return nlohmann::json{{"format", "saelab-checkpoint"}, {"version", 1}, {"step", 1000}, {"files", files}}
      .dump();
}
}  // namespace

SAELAB_FUZZ_TARGET("checkpoint") {
  const auto parts = saelab::fuzz::split_parts(data, size);
  const auto dir = saelab::fuzz::fresh_dir() / "checkpoints" / saelab::checkpoint_dir_name(1000);
  std::filesystem::create_directories(dir);
  saelab::fuzz::write_file(dir / "trainer.json", parts[0]);
  if (parts.size() > 1) saelab::fuzz::write_file(dir / "state.safetensors", parts[1]);
  const std::string manifest = manifest_for(parts);
  saelab::fuzz::write_file(dir / "manifest.json", manifest);
  saelab::fuzz::write_file(dir / "COMMITTED", saelab::sha256_hex(manifest));
  (void)saelab::verify_checkpoint(dir);
  saelab::fuzz::expect_clear_error("checkpoint", [&] {
    (void)saelab::load_newest_train_checkpoint(dir.parent_path(), [](const std::string&) {});
  });
  (void)saelab::load_train_checkpoint(dir);
}
