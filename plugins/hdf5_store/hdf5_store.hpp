#pragma once
// The "hdf5" ActivationStore: a directory of HDF5 shards plus manifest.json (format in
// store_format.hpp).
//
// Writer: rows are converted to the on-disk dtype and staged one chunk at a time into a shard
// written under a temporary name. A shard is cut at the first sequence boundary once it holds
// shard_rows rows; commit() also ends the current shard. Ending a shard = write, close, fsync,
// rename, then replace the manifest atomically; a crash at any point leaves the previous manifest
// and its shards intact. A writer destroyed without commit()/finish() drops its uncommitted rows,
// exactly as a crash would.
//
// Reader: see hdf5_reader.hpp.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "saelab/interfaces/activation_store.hpp"
#include "saelab/data/row_dtype.hpp"
#include "store_format.hpp"

namespace saelab::hdf5_store {

struct Hdf5StoreConfig {
  RowDtype dtype = RowDtype::Float16;  // on-disk dtype; recorded in StoreMeta::dtype
  Layout layout;
  // Tests only: called at named points of a commit ("shard_open", "chunk_written",
  // "shard_closed", "shard_renamed", "manifest_written") so a test can kill the process there.
  std::function<void(const std::string& point)> test_hook;

  // The default layout but for dtype, rows per shard and rows per chunk.
  static Hdf5StoreConfig with(RowDtype dtype, std::int64_t shard_rows, std::int64_t chunk_rows) {
    Hdf5StoreConfig c;
    c.dtype = dtype;
    c.layout.shard_rows = shard_rows;
    c.layout.chunk_rows = chunk_rows;
    return c;
  }
};

class Hdf5Store final : public ActivationStore {
 public:
  explicit Hdf5Store(Hdf5StoreConfig cfg);
  // meta.dtype is replaced by the configured dtype; meta.d must match the rows appended.
  std::unique_ptr<ActivationStoreWriter> open_writer(const std::filesystem::path& dir, const StoreMeta& meta,
                                                     bool resume) override;
  std::unique_ptr<ActivationReader> open_reader(const std::filesystem::path& dir,
                                                const ReaderOptions& opts) override;
  StoreMeta meta(const std::filesystem::path& dir) override;
  std::optional<NormStats> stats(const std::filesystem::path& dir) override;
  // {"dir", "ok", "verified", "rows", "sequences", "complete", "meta", "layout",
  //  "shards": [{"file", "rows", "bytes", "first_sequence", "end_sequence", "status", "error"?}],
  //  "unlisted_files": [...], "stats": null | {"rows", "mean_norm", "mean_vector_norm"}}
  // status: "ok" | "missing" | "damaged" (error says why). verify=true also hashes every shard
  // against the manifest's SHA-256 and reads every chunk through its Fletcher32 checksum.
  nlohmann::json info(const std::filesystem::path& dir, bool verify) override;
  // Lists the parts' shards in one manifest (store_format.hpp, parts/); moves no file.
  void join_parts(const std::filesystem::path& dir, const std::vector<std::filesystem::path>& parts) override;

 private:
  Hdf5StoreConfig cfg_;
};

// The writer, exposed for tests and benchmarks (the plugin hands it out through open_writer).
std::unique_ptr<ActivationStoreWriter> open_hdf5_writer(const std::filesystem::path& dir, StoreMeta meta,
                                                        bool resume, const Hdf5StoreConfig& cfg);

}  // namespace saelab::hdf5_store
