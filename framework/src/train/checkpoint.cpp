// Training checkpoints on top of the generic checkpoint directories (checkpoint_dir.hpp).
#include <algorithm>
#include <regex>

#include "saelab/formats/checkpoint_dir.hpp"
#include "saelab/core/error.hpp"
#include "saelab/train/checkpoint.hpp"

namespace saelab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kState = "state";   // state.safetensors
constexpr const char* kMeta = "trainer";  // trainer.json
constexpr const char* kFormat = "saelab-train-checkpoint";
constexpr int kVersion = 1;
}  // namespace

fs::path write_train_checkpoint(const fs::path& checkpoints, const TrainCheckpoint& ckpt, std::int64_t keep) {
  Checkpoint c;
  c.step = ckpt.step;
  c.tensors[kState] = ckpt.tensors;
  json meta = ckpt.meta;
  meta["format"] = kFormat;
  meta["version"] = kVersion;
  meta["step"] = ckpt.step;
  c.json[kMeta] = std::move(meta);
  return write_checkpoint(checkpoints, c, int(keep)).dir;
}

std::vector<fs::path> list_train_checkpoints(const fs::path& checkpoints) {
  static const std::regex re(R"(^step-(\d{12})$)");
  std::vector<std::pair<std::int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(checkpoints, ec)) return {};
  for (const auto& entry : fs::directory_iterator(checkpoints)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && std::regex_match(name, m, re)) {
      found.emplace_back(std::stoll(m[1].str()), entry.path());
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

TrainCheckpoint load_train_checkpoint(const fs::path& dir) {
  Checkpoint c = load_checkpoint(dir);
  const std::string where = (dir / "trainer.json").string();
  SAELAB_CHECK(c.json.count(kMeta) && c.tensors.count(kState), FormatError, dir.string(),
               ": not a training checkpoint (trainer.json and state.safetensors are required)");
  TrainCheckpoint out;
  out.meta = std::move(c.json[kMeta]);
  SAELAB_CHECK(out.meta.is_object() && out.meta.value("format", "") == kFormat, FormatError, where,
               ": \"format\" must be \"", kFormat, "\"");
  SAELAB_CHECK(out.meta.value("version", 0) == kVersion, FormatError, where, ": version ",
               out.meta.value("version", json()).dump(), " is not supported (this saelab reads ", kVersion,
               ")");
  SAELAB_CHECK(out.meta.value("step", json()) == json(c.step), FormatError, where, ": \"step\" is ",
               out.meta.value("step", json()).dump(), " but the checkpoint's step is ", c.step);
  out.step = c.step;
  out.tensors = std::move(c.tensors[kState]);
  return out;
}

std::optional<FoundCheckpoint> load_newest_train_checkpoint(const fs::path& checkpoints,
                                                            const WarningFn& warn) {
  for (const fs::path& dir : list_train_checkpoints(checkpoints)) {
    try {
      return FoundCheckpoint{dir, load_train_checkpoint(dir)};
    } catch (const Error& e) {
      if (warn) warn(cat("skipping checkpoint ", dir.string(), ": ", e.what()));
    }
  }
  return std::nullopt;
}

}  // namespace saelab
