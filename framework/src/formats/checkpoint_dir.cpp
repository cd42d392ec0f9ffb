// Checkpoint directories (format in saelab/formats/checkpoint_dir.hpp).
#include "saelab/formats/checkpoint_dir.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <unistd.h>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kManifest = "manifest.json";
constexpr const char* kMarker = "COMMITTED";
constexpr const char* kFormat = "saelab-checkpoint";
constexpr int kVersion = 1;
constexpr std::int64_t kMaxStep = 999'999'999'999;  // 12 digits
constexpr std::uintmax_t kMaxJsonBytes = 256u << 20;

bool all_digits(const std::string& s, std::size_t from, std::size_t to) {
  if (from >= to || to > s.size()) return false;
  for (std::size_t i = from; i < to; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// File names a manifest may list: plain names in the checkpoint directory, never paths.
bool plain_file_name(const std::string& s) {
  if (s.empty() || s[0] == '.' || s[0] == '-') return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string padded(std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012lld", static_cast<long long>(step));
  return buf;
}

// step-<12 digits> -> step; anything else -> nullopt.
std::optional<std::int64_t> committed_step(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.size() != 17 || name.compare(0, 5, "step-") != 0 || !all_digits(name, 5, 17)) return std::nullopt;
  return std::stoll(name.substr(5));
}

// tmp-<12 digits> or trash-<12 digits>-<pid>: what interrupted writes leave behind.
bool leftover_name(const std::string& name) {
  if (name.size() == 16 && name.compare(0, 4, "tmp-") == 0) return all_digits(name, 4, 16);
  return name.size() > 19 && name.compare(0, 6, "trash-") == 0 && all_digits(name, 6, 18) &&
         name[18] == '-' && all_digits(name, 19, name.size());
}

void check_stem(const std::string& stem, const char* ext) {
  SAELAB_CHECK(plain_file_name(stem), Error, "checkpoint file name '", stem, ext,
               "' is not allowed; names are [A-Za-z0-9_.-]+ and do not start with '.' or '-'");
  SAELAB_CHECK(stem + ext != kManifest, Error, "checkpoint file name '", stem, ext,
               "' is reserved for the manifest");
}

json manifest_entry(const fs::path& file) {
  return {{"sha256", sha256_file(file)}, {"size", static_cast<std::uint64_t>(fs::file_size(file))}};
}

// Leftovers of interrupted writes. Only this root's own naming patterns are touched.
void remove_leftovers(const fs::path& root) {
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && leftover_name(e.path().filename().string())) fs::remove_all(e.path());
  }
}

std::vector<std::pair<std::int64_t, fs::path>> committed_dirs(const fs::path& root) {
  std::vector<std::pair<std::int64_t, fs::path>> out;
  for (const auto& e : fs::directory_iterator(root)) {
    auto step = committed_step(e.path());
    if (step && e.is_directory()) out.emplace_back(*step, e.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::vector<fs::path> prune(const fs::path& root, const fs::path& just_written, int keep_last) {
  std::vector<fs::path> removed;
  int kept = 0;
  for (const auto& [step, dir] : committed_dirs(root)) {
    (void)step;
    if (!fs::exists(dir / kMarker)) continue;  // not ours to judge: left alone, and never read
    if (kept < keep_last || dir == just_written) {
      ++kept;
      continue;
    }
    fs::remove_all(dir);
    removed.push_back(dir);
  }
  if (!removed.empty()) fsync_dir(root);
  return removed;
}

json read_json_file(const fs::path& file, const char* what) {
  std::string text = read_file(file, kMaxJsonBytes, what);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(cat(file.string(), ": not valid JSON (", e.what(), ")"));
  }
}

std::optional<std::string> verify_files(const fs::path& dir, const json& files) {
  if (!files.is_object()) return std::string("manifest.json 'files' is not an object");
  for (const auto& [name, entry] : files.items()) {
    if (!plain_file_name(name) || name == kManifest || name == kMarker)
      return cat("manifest.json lists '", name, "', which is not a plain checkpoint file name");
    if (!entry.is_object() || !entry.contains("sha256") || !entry["sha256"].is_string() ||
        !entry.contains("size") || !entry["size"].is_number_unsigned())
      return cat("manifest.json entry for '", name, "' must be {\"sha256\": hex, \"size\": bytes}");
    const fs::path file = dir / name;
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    if (ec) return cat("file '", name, "' listed in manifest.json is missing (", ec.message(), ")");
    if (size != entry["size"].get<std::uint64_t>())
      return cat("file '", name, "' is ", size, " bytes but manifest.json says ",
                 entry["size"].get<std::uint64_t>(), " (truncated or rewritten)");
    std::string sha = sha256_file(file);
    if (sha != entry["sha256"].get<std::string>())
      return cat("file '", name, "' has SHA-256 ", sha, " but manifest.json says ",
                 entry["sha256"].get<std::string>(), " (the file is corrupt)");
  }
  return std::nullopt;
}
}  // namespace

std::string checkpoint_dir_name(std::int64_t step) {
  return "step-" + padded(step);
}

CheckpointWriteResult write_checkpoint(const fs::path& root, const Checkpoint& ckpt, int keep_last) {
  SAELAB_CHECK(keep_last >= 2, ConfigError, "checkpoint keep_last is ", keep_last,
               "; it must be >= 2 so that a corrupt newest checkpoint has a predecessor");
  SAELAB_CHECK(ckpt.step >= 0 && ckpt.step <= kMaxStep, Error, "checkpoint step ", ckpt.step,
               " is out of range; allowed: 0 .. ", kMaxStep);
  for (const auto& [stem, t] : ckpt.tensors) check_stem(stem, ".safetensors");
  for (const auto& [stem, j] : ckpt.json) check_stem(stem, ".json");

  fs::create_directories(root);
  remove_leftovers(root);
  const fs::path tmp = root / ("tmp-" + padded(ckpt.step));
  fs::create_directory(tmp);
  json files = json::object();
  for (const auto& [stem, tensors] : ckpt.tensors) {
    const std::string name = stem + ".safetensors";
    safetensors::save(tmp / name, tensors);
    files[name] = manifest_entry(tmp / name);
  }
  for (const auto& [stem, value] : ckpt.json) {
    const std::string name = stem + ".json";
    write_file_atomic(tmp / name, value.dump(2) + "\n");
    files[name] = manifest_entry(tmp / name);
  }
  json manifest = {{"format", kFormat}, {"version", kVersion}, {"step", ckpt.step}, {"files", files}};
  const std::string manifest_text = manifest.dump(2) + "\n";
  write_file_atomic(tmp / kManifest, manifest_text);
  write_file_atomic(tmp / kMarker, sha256_hex(manifest_text) + "\n");
  fsync_dir(tmp);

  CheckpointWriteResult result;
  result.dir = root / checkpoint_dir_name(ckpt.step);
  if (fs::exists(result.dir)) {
    // rename(2) cannot replace a non-empty directory: move the old one aside first.
    const fs::path trash = root / ("trash-" + padded(ckpt.step) + "-" + std::to_string(::getpid()));
    rename_durable(result.dir, trash);
    rename_durable(tmp, result.dir);
    fs::remove_all(trash);
  } else {
    rename_durable(tmp, result.dir);
  }
  result.pruned = prune(root, result.dir, keep_last);
  return result;
}

namespace {
std::optional<std::string> verify_impl(const fs::path& dir) {
  if (!fs::is_regular_file(dir / kMarker))
    return std::string("no COMMITTED marker (its write was interrupted)");
  if (!fs::is_regular_file(dir / kManifest)) return std::string("manifest.json is missing");
  const std::string manifest_text = read_file(dir / kManifest, kMaxJsonBytes, "checkpoint manifest");
  std::string marker = read_file(dir / kMarker, 1024, "checkpoint marker");
  while (!marker.empty() && (marker.back() == '\n' || marker.back() == ' ')) marker.pop_back();
  if (marker != sha256_hex(manifest_text))
    return std::string("manifest.json does not match the SHA-256 in COMMITTED (corrupt manifest)");
  json manifest = json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object() || manifest.value("format", "") != kFormat ||
      manifest.value("version", 0) != kVersion)
    return cat("manifest.json is not a ", kFormat, " version ", kVersion, " manifest");
  auto step = committed_step(dir);
  if (!manifest.contains("step") || !manifest["step"].is_number_integer() ||
      (step && manifest["step"].get<std::int64_t>() != *step))
    return std::string("manifest.json 'step' is missing or does not match the directory name");
  if (!manifest.contains("files")) return std::string("manifest.json has no 'files'");
  return verify_files(dir, manifest["files"]);
}
}  // namespace

std::optional<std::string> verify_checkpoint(const fs::path& dir) {
  // A hostile manifest can hold any JSON; type errors are reported like any other corruption.
  try {
    return verify_impl(dir);
  } catch (const json::exception& e) {
    return cat("manifest.json is malformed (", e.what(), ")");
  } catch (const Error& e) {
    return std::string(e.what());
  }
}

LatestCheckpoint find_latest_valid(const fs::path& root) {
  LatestCheckpoint out;
  if (!fs::is_directory(root)) return out;
  for (const auto& [step, dir] : committed_dirs(root)) {
    auto problem = verify_checkpoint(dir);
    if (!problem) {
      out.dir = dir;
      out.step = step;
      return out;
    }
    out.warnings.push_back(cat("skipping checkpoint '", dir.string(), "': ", *problem));
  }
  return out;
}

Checkpoint load_checkpoint(const fs::path& dir) {
  if (auto problem = verify_checkpoint(dir))
    throw FormatError(cat("checkpoint '", dir.string(), "' is not valid: ", *problem));
  json manifest = read_json_file(dir / kManifest, "checkpoint manifest");
  Checkpoint ckpt;
  ckpt.step = manifest["step"].get<std::int64_t>();
  for (const auto& [name, entry] : manifest["files"].items()) {
    (void)entry;
    const fs::path file = dir / name;
    const std::string stem = file.stem().string();
    if (file.extension() == ".safetensors")
      ckpt.tensors[stem] = safetensors::load(file).tensors;
    else if (file.extension() == ".json")
      ckpt.json[stem] = read_json_file(file, "checkpoint file");
    else
      throw FormatError(cat("checkpoint '", dir.string(), "': file '", name,
                            "' has an unknown extension; allowed: .safetensors, .json"));
  }
  return ckpt;
}

}  // namespace saelab
