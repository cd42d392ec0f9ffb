#pragma once
// On-disk format of the "hdf5" activation store (format "saelab-activation-store", version 1).
//
// A store is a directory:
//   manifest.json          the only thing a reader trusts; replaced atomically (temp, fsync, rename)
//   shard-000000.h5 ...    HDF5 shard files, numbered in commit order; files the manifest does not
//                          list (a shard renamed just before a crash) are ignored and overwritten
//   shard-000007.h5.tmp    a shard being written; deleted when a writer resumes
//   parts/<part>/          a data-parallel harvest: each rank's part, itself a store of this
//                          format holding a consecutive range of sequences; the joined manifest
//                          lists their shards as "parts/<part>/shard-000000.h5", in sequence order
//
// manifest.json
//   {"format": "saelab-activation-store", "format_version": 1,
//    "meta":   StoreMeta as JSON (model_id, config_hash, hook, d, dtype, context_size, prepend_bos,
//              exclude_bos, tokenizer_sha256, corpus_fingerprint, saelab_version),
//    "layout": {"shard_rows": R, "chunk_rows": C, "compression": "none"|"gzip",
//               "compression_level": L},
//    "shards": [{"file": "shard-000000.h5", "rows": n, "first_sequence": s0, "end_sequence": s1,
//                "bytes": file size, "sha256": hex of the whole file}, ...],
//    "rows": total rows, "sequences": end_sequence of the last shard (0 if none),
//    "accumulator": {"rows": n, "sum_norm": x, "sum": [d]},   running sums over committed rows
//    "complete": true once finish() ran,
//    "stats": null | {"rows": n, "mean_norm": x, "mean": [d]}}
//   Shard i holds every row of sequences [first_sequence, end_sequence) that has rows: shards end
//   on sequence boundaries, so "sequences" is where a resumed harvest restarts. A shard has at
//   least shard_rows rows (the last one fewer), at most shard_rows + one sequence.
//   Statistics are over float32 rows as appended (before rounding to the on-disk dtype), summed in
//   double in row order, so a resumed store's statistics equal an uninterrupted one's bit for bit.
//
// Shard file (HDF5, default "earliest" file format: readable by h5py and HDF5 >= 1.8 tools)
//   /activations [N, d]  float32: H5T_IEEE_F32LE
//                        float16: IEEE binary16 as an HDF5 float type (sign bit 15, exponent bits
//                                 10-14 with bias 15, mantissa bits 0-9); h5py reads numpy float16
//                        bfloat16: HDF5 has no bfloat16 type, so H5T_STD_U16LE holding the upper 16
//                                 bits of each float32, with dataset attribute
//                                 encoding = "bfloat16"; decode: float32 bits = uint32(v) << 16
//                                 (numpy: (a.astype(np.uint32) << 16).view(np.float32))
//   /tokens   [N] int32 LE   token id of each row
//   /sequence [N] int64 LE   global sequence index in corpus order
//   /position [N] int32 LE   position within the sequence
//   Every dataset is chunked by chunk_rows rows ([C, d] and [C]) with the Fletcher32 checksum
//   filter, so a flipped bit fails the read of its chunk; compression=gzip adds shuffle+deflate.
//   Object timestamps are off, so equal contents give byte-identical files.
//   Root attributes: format = "saelab-activation-shard", format_version = 1, every StoreMeta field
//   (strings as UTF-8 variable-length strings, integers as int64, prepend_bos/exclude_bos as int64
//   0/1), shard_index, rows, first_sequence, end_sequence.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/interfaces/activation_store.hpp"

namespace saelab::hdf5_store {

inline constexpr const char* kStoreFormat = "saelab-activation-store";
inline constexpr const char* kShardFormat = "saelab-activation-shard";
inline constexpr std::int64_t kFormatVersion = 1;
inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kPartsDir = "parts";
inline constexpr std::uintmax_t kMaxManifestBytes = std::uintmax_t(1) << 30;

std::string shard_file_name(std::int64_t index);  // "shard-000012.h5"
// A name that stays in its directory: not empty, no '/', not starting with '.'.
bool is_plain_file_name(const std::string& name);
struct ShardEntry;
// dir / e.file, resolved; FormatError when a symlink leads out of dir (a missing file is left to
// the shard reader, which names it).
std::filesystem::path shard_path(const std::filesystem::path& dir, const ShardEntry& e);

struct Layout {
  std::int64_t shard_rows = 1 << 16;
  std::int64_t chunk_rows = 1024;
  std::string compression = "none";  // none | gzip
  std::int64_t compression_level = 4;
};

struct ShardEntry {
  std::string file;
  std::int64_t rows = 0;
  std::int64_t first_sequence = 0;
  std::int64_t end_sequence = 0;  // exclusive
  std::uint64_t bytes = 0;
  std::string sha256;
};

// Running sums for NormStats, accumulated row by row in double.
struct StatsAccumulator {
  std::int64_t rows = 0;
  double sum_norm = 0.0;
  std::vector<double> sum;  // [d]

  void add_rows(const float* x_rows, std::int64_t n, std::int64_t d);  // x_rows [n, d]
  void merge(const StatsAccumulator& other);
  NormStats finish() const;
};

struct Manifest {
  StoreMeta meta;
  Layout layout;
  std::vector<ShardEntry> shards;
  StatsAccumulator accumulator;
  bool complete = false;
  std::optional<NormStats> stats;

  std::int64_t rows() const;
  std::int64_t sequences() const;
};

nlohmann::json manifest_to_json(const Manifest& m);
// Validates everything (untrusted input); errors name `where` and the key.
Manifest manifest_from_json(const nlohmann::json& j, const std::string& where);
bool has_manifest(const std::filesystem::path& dir);
Manifest read_manifest(const std::filesystem::path& dir);
void write_manifest(const std::filesystem::path& dir, const Manifest& m);

// The first identity field (saelab_version excluded) where `got` differs from `want`, described
// as "hook is 'x' but the store has 'y'"; "" when they match.
std::string meta_difference(const StoreMeta& want, const StoreMeta& got);

}  // namespace saelab::hdf5_store
