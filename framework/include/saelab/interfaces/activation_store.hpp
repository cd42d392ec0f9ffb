#pragma once
// ActivationStore: activations harvested once, read many times.
//
// A writer appends rows and commits them in durable units (shards); after a crash, a writer opened
// with resume=true reports how many rows are committed, and harvesting continues from there. A
// reader streams shuffled batches with bounded memory and a cursor that a training checkpoint can
// save and restore exactly.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

// Identity of what was harvested. Stores refuse to mix rows of different identities.
struct SAELAB_API StoreMeta {
  std::string model_id;
  std::string config_hash;
  std::string hook;
  std::int64_t d = 0;
  std::string dtype = "float16";  // on-disk dtype: float32 | float16 | bfloat16 (the store sets it)
  std::int64_t context_size = 0;
  bool prepend_bos = true;
  bool exclude_bos = true;
  std::string tokenizer_sha256;
  std::string corpus_fingerprint;
  std::string saelab_version;
};
SAELAB_API nlohmann::json to_json(const StoreMeta& m);
SAELAB_API StoreMeta store_meta_from_json(const nlohmann::json& j, const std::string& where);

// Rows with their provenance, so every activation can be traced back to its text.
struct SAELAB_API ActivationRows {
  torch::Tensor activations;  // [n, d] float32
  torch::Tensor tokens;       // [n] int32
  torch::Tensor sequence;     // [n] int64, global sequence index in corpus order
  torch::Tensor position;     // [n] int32, position within the sequence
};

// Which positions of a forward pass count. Harvest stores only these rows, and evaluation and
// reports measure only these, so an SAE is judged on the distribution it was trained on (attention
// sinks and control tokens are outliers; see data/harvest_rows.hpp).
struct SAELAB_API RowFilter {
  std::int64_t first_position = 0;            // positions [0, first_position) are left out
  std::vector<std::int32_t> excluded_tokens;  // rows at these token ids are left out
};

// Computed by the writer from every row appended (float32 values as appended, before rounding to
// the on-disk dtype), in row order; used to scale inputs to mean norm sqrt(d).
struct SAELAB_API NormStats {
  std::int64_t rows = 0;
  double mean_norm = 0.0;
  std::vector<double> mean;  // [d]
};

class SAELAB_API ActivationStoreWriter {
 public:
  virtual ~ActivationStoreWriter() = default;
  // Rows already durable when the writer was opened (resume), plus what it committed since.
  virtual std::int64_t committed_rows() const = 0;
  // 1 + the largest sequence index committed (0 if none). Commits end on sequence boundaries, so a
  // resumed harvest restarts at this corpus sequence and loses or repeats no token.
  virtual std::int64_t committed_sequences() const = 0;
  virtual void append(const ActivationRows& rows) = 0;
  // Makes everything appended so far durable; a crash afterwards loses none of it. Call it only
  // between sequences: rows of an already committed sequence are refused afterwards.
  virtual void commit() = 0;
  // Commits, records the statistics the writer accumulated from all rows of the store (resumed
  // runs included) and marks the store complete; returns those statistics.
  virtual NormStats finish() = 0;
};

struct SAELAB_API ReaderOptions {
  std::uint64_t seed = 0;
  std::int64_t buffer_rows = std::int64_t(1) << 19;  // rows mixed in memory
  std::int64_t batch_rows = 4096;
  torch::Device device = torch::kCPU;
  bool shuffle = true;
};

// The rows of one part of a batch (ActivationReader::next_part): batch_rows / parts. Throws an
// Error naming `where` unless parts divides the batch and 0 ≤ part < parts.
SAELAB_API std::int64_t batch_part_rows(std::int64_t part, std::int64_t parts, std::int64_t batch_rows,
                                        const std::string& where);

class SAELAB_API ActivationReader {
 public:
  virtual ~ActivationReader() = default;
  // Next batch; epochs continue forever in a new permutation each time. [batch_rows, d] float32.
  virtual torch::Tensor next_batch() = 0;
  // Next batch with provenance (for reports); same order as next_batch.
  virtual ActivationRows next_rows() = 0;
  // Rows [part·n, (part + 1)·n) of the next batch, n = batch_rows / parts (provenance only when
  // asked); the stream moves on by the whole batch, as next_batch() does. A data-parallel rank
  // takes its slice of each global batch this way without converting or moving the other ranks'
  // rows. The default reads the whole batch and slices it.
  virtual ActivationRows next_part(std::int64_t part, std::int64_t parts, bool with_provenance);
  virtual std::int64_t rows_per_epoch() const = 0;
  virtual std::int64_t d() const = 0;
  // Exact position in the stream: restoring it yields the batches the original would have produced.
  virtual nlohmann::json cursor() const = 0;
  virtual void restore(const nlohmann::json& cursor) = 0;
};

class SAELAB_API ActivationStore {
 public:
  static constexpr const char* kKind = "store";
  virtual ~ActivationStore() = default;
  // resume=false on an existing non-empty store is an error (never overwrite silently).
  virtual std::unique_ptr<ActivationStoreWriter> open_writer(const std::filesystem::path& dir,
                                                             const StoreMeta& meta, bool resume) = 0;
  virtual std::unique_ptr<ActivationReader> open_reader(const std::filesystem::path& dir,
                                                        const ReaderOptions& opts) = 0;
  virtual StoreMeta meta(const std::filesystem::path& dir) = 0;
  // The statistics recorded by finish(); nullopt while the store is incomplete.
  virtual std::optional<NormStats> stats(const std::filesystem::path& dir) = 0;
  // Human-readable summary; verify=true checks every shard's checksums.
  virtual nlohmann::json info(const std::filesystem::path& dir, bool verify) = 0;
  // Data-parallel harvest: commits `dir` as one complete store made of the complete stores
  // `parts`, which lie in `dir`/parts/ and hold consecutive sequence ranges, in order. Rows are not
  // copied, and the commit is atomic: after a crash the store is complete or absent. The default
  // refuses (a store plugin that cannot do it).
  virtual void join_parts(const std::filesystem::path& dir, const std::vector<std::filesystem::path>& parts);
};

}  // namespace saelab
