#pragma once
// Shuffled, bounded-memory reading of an hdf5 activation store.
//
// The store is cut into chunks (chunk_rows rows of one shard, the unit HDF5 stores and checksums).
// Epoch e visits every chunk once, in an order permuted with seed derive_seed(seed, 0, e). That
// order is cut greedily into windows of at most buffer_rows rows; window w is read into the
// MixingBuffer, its rows are permuted with derive_seed(seed, 1, e, w), and it is drained completely
// before the next window is read. Batches run across window and epoch boundaries, epochs forever.
//
// So every row appears exactly once per epoch, the stream depends only on (store, seed,
// buffer_rows, shuffle), and a position in it is (epoch, window, offset): cursor() saves that and
// restore() re-reads the window and skips `offset` rows, reproducing the original's batches
// exactly (batch_rows may even change: the row stream is the same). Memory: the buffer (rows in
// the on-disk dtype) plus one batch.
//
// Shards are opened (and checked: size, identity attributes, shapes) when the reader is created;
// at most kOpenShards stay open at a time.
#include <filesystem>
#include <list>
#include <memory>

#include "saelab/interfaces/activation_store.hpp"
#include "saelab/data/mixing_buffer.hpp"
#include "shard_file.hpp"
#include "store_format.hpp"

namespace saelab::hdf5_store {

class Hdf5Reader final : public ActivationReader {
 public:
  static constexpr std::size_t kOpenShards = 16;

  Hdf5Reader(std::filesystem::path dir, Manifest manifest, ReaderOptions opts);

  torch::Tensor next_batch() override;  // [batch_rows, d] float32 on opts.device
  ActivationRows next_rows() override;  // provenance on the CPU
  ActivationRows next_part(std::int64_t part, std::int64_t parts, bool with_provenance) override;
  std::int64_t rows_per_epoch() const override { return rows_per_epoch_; }
  std::int64_t d() const override { return manifest_.meta.d; }
  nlohmann::json cursor() const override;
  void restore(const nlohmann::json& cursor) override;

 private:
  struct Chunk {
    std::int32_t shard;
    std::int64_t row0;
    std::int64_t rows;
  };
  struct Window {
    std::int64_t first;  // index into order_
    std::int64_t end;
    std::int64_t rows;
  };

  ActivationRows take(bool with_provenance, std::int64_t part, std::int64_t parts);
  void plan_epoch(std::int64_t epoch);  // order_ and windows_ for `epoch`
  void load_window();                   // reads windows_[window_] and skips offset_ rows
  ShardReader& shard(std::int32_t index);

  std::filesystem::path dir_;
  Manifest manifest_;
  ReaderOptions opts_;
  RowDtype dtype_;
  std::int64_t rows_per_epoch_ = 0;
  std::string store_id_;  // identifies the store's contents in cursors
  std::vector<Chunk> chunks_;

  // Open shards, most recently used first.
  std::list<std::pair<std::int32_t, std::unique_ptr<ShardReader>>> open_;

  MixingBuffer buffer_;
  std::int64_t planned_epoch_ = -1;
  std::vector<std::int64_t> order_;  // chunk indices in visiting order
  std::vector<Window> windows_;

  // Stream position: rows `offset_` of window `window_` of epoch `epoch_` have been emitted.
  std::int64_t epoch_ = 0;
  std::int64_t window_ = 0;
  std::int64_t offset_ = 0;
  bool loaded_ = false;  // buffer_ holds that window's remaining rows
};

}  // namespace saelab::hdf5_store
