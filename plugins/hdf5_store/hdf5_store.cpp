#include "hdf5_store.hpp"

#include <cmath>
#include <set>
#include <system_error>

#include "h5_util.hpp"
#include "hdf5_reader.hpp"
#include "saelab/core/sha256.hpp"
#include "shard_file.hpp"

namespace saelab::hdf5_store {
namespace fs = std::filesystem;

Hdf5Store::Hdf5Store(Hdf5StoreConfig cfg) : cfg_(std::move(cfg)) {
  h5::quiet();
}

std::unique_ptr<ActivationStoreWriter> Hdf5Store::open_writer(const fs::path& dir, const StoreMeta& meta,
                                                              bool resume) {
  h5::quiet();
  return open_hdf5_writer(dir, meta, resume, cfg_);
}

std::unique_ptr<ActivationReader> Hdf5Store::open_reader(const fs::path& dir, const ReaderOptions& opts) {
  h5::quiet();
  return std::make_unique<Hdf5Reader>(dir, read_manifest(dir), opts);
}

StoreMeta Hdf5Store::meta(const fs::path& dir) {
  return read_manifest(dir).meta;
}

std::optional<NormStats> Hdf5Store::stats(const fs::path& dir) {
  return read_manifest(dir).stats;
}

namespace {

// Health of one listed shard. Without verify: present, right size, opens, identity matches.
// With verify: also the SHA-256 of the whole file and every chunk's Fletcher32 checksum.
nlohmann::json shard_health(const fs::path& dir, const Manifest& m, const ShardEntry& e, bool verify) {
  nlohmann::json j = {{"file", e.file},
                      {"rows", e.rows},
                      {"bytes", e.bytes},
                      {"first_sequence", e.first_sequence},
                      {"end_sequence", e.end_sequence},
                      {"status", "ok"}};
  const fs::path path = dir / e.file;
  if (!fs::exists(path)) {
    j["status"] = "missing";
    j["error"] = cat("shard '", path.string(), "' is listed in the manifest but does not exist");
    return j;
  }
  try {
    const fs::path file = shard_path(dir, e);  // what is read is what was checked
    ShardReader reader(file, e, m.meta, row_dtype_from_string(m.meta.dtype, "manifest"));
    if (verify) {
      const std::string sha = sha256_file(file);
      std::string chunk_error = reader.verify_chunks(m.layout.chunk_rows);
      if (sha != e.sha256 || !chunk_error.empty()) {
        j["status"] = "damaged";
        j["error"] =
            cat("shard '", path.string(),
                "': ", sha != e.sha256 ? cat("SHA-256 ", sha, " differs from the manifest's ", e.sha256) : "",
                sha != e.sha256 && !chunk_error.empty() ? "; " : "", chunk_error);
      }
    }
  } catch (const std::exception& ex) {
    j["status"] = "damaged";
    j["error"] = ex.what();
  }
  return j;
}

}  // namespace

nlohmann::json Hdf5Store::info(const fs::path& dir, bool verify) {
  h5::quiet();
  const Manifest m = read_manifest(dir);
  nlohmann::json shards = nlohmann::json::array();
  bool ok = true;
  std::set<std::string> listed;
  for (const auto& e : m.shards) {
    shards.push_back(shard_health(dir, m, e, verify));
    ok = ok && shards.back()["status"] == "ok";
    listed.insert(e.file);
  }
  nlohmann::json unlisted = nlohmann::json::array();
  for (const auto& ent : fs::directory_iterator(dir)) {
    const std::string name = ent.path().filename().string();
    const bool parts =
        name == kPartsDir && !m.shards.empty() && m.shards.front().file.rfind(name + "/", 0) == 0;
    if (name != kManifestName && !listed.count(name) && !parts) unlisted.push_back(name);
  }
  nlohmann::json stats = nullptr;
  if (m.stats) {
    double sq = 0;
    for (double v : m.stats->mean) sq += v * v;
    stats = {{"rows", m.stats->rows}, {"mean_norm", m.stats->mean_norm}, {"mean_vector_norm", std::sqrt(sq)}};
  }
  const nlohmann::json full = manifest_to_json(m);
  return {{"dir", dir.string()},
          {"ok", ok},
          {"verified", verify},
          {"rows", m.rows()},
          {"sequences", m.sequences()},
          {"complete", m.complete},
          {"meta", full["meta"]},
          {"layout", full["layout"]},
          {"shards", shards},
          {"unlisted_files", unlisted},
          {"stats", stats}};
}

}  // namespace saelab::hdf5_store
