#include "hdf5_reader.hpp"

#include <numeric>

#include "saelab/core/det_rng.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab::hdf5_store {
namespace fs = std::filesystem;

namespace {
constexpr const char* kCursorKind = "hdf5";
}

Hdf5Reader::Hdf5Reader(fs::path dir, Manifest manifest, ReaderOptions opts)
    : dir_(std::move(dir)),
      manifest_(std::move(manifest)),
      opts_(opts),
      dtype_(row_dtype_from_string(manifest_.meta.dtype, (dir_ / kManifestName).string())),
      // A store smaller than the buffer needs no more room than its rows.
      buffer_(std::max<std::int64_t>(1, std::min(opts.buffer_rows, manifest_.rows())), manifest_.meta.d,
              dtype_) {
  const std::string where = cat("activation store '", dir_.string(), "'");
  SAELAB_CHECK(opts_.batch_rows >= 1, Error, where, ": batch_rows = ", opts_.batch_rows,
               " must be at least 1");
  SAELAB_CHECK(opts_.buffer_rows >= manifest_.layout.chunk_rows, Error, where,
               ": buffer_rows = ", opts_.buffer_rows,
               " is smaller than the store's chunk_rows = ", manifest_.layout.chunk_rows,
               "; the mixing buffer must hold at least one chunk");
  SAELAB_CHECK(!manifest_.shards.empty(), FormatError, where,
               " has no committed rows yet; harvest (or resume the harvest) first");
  Sha256 id;
  for (std::size_t s = 0; s < manifest_.shards.size(); ++s) {
    const ShardEntry& e = manifest_.shards[s];
    // Opening checks the file against its manifest entry; a bad shard fails here, not mid-training.
    shard(static_cast<std::int32_t>(s));
    for (std::int64_t r = 0; r < e.rows; r += manifest_.layout.chunk_rows)
      chunks_.push_back({static_cast<std::int32_t>(s), r, std::min(manifest_.layout.chunk_rows, e.rows - r)});
    rows_per_epoch_ += e.rows;
    id.update(e.sha256);
  }
  id.update(cat(manifest_.layout.chunk_rows));
  store_id_ = id.hex_digest().substr(0, 32);
}

ShardReader& Hdf5Reader::shard(std::int32_t index) {
  for (auto it = open_.begin(); it != open_.end(); ++it) {
    if (it->first == index) {
      open_.splice(open_.begin(), open_, it);
      return *open_.front().second;
    }
  }
  const ShardEntry& e = manifest_.shards[static_cast<std::size_t>(index)];
  auto reader = std::make_unique<ShardReader>(shard_path(dir_, e), e, manifest_.meta, dtype_);
  open_.emplace_front(index, std::move(reader));
  if (open_.size() > kOpenShards) open_.pop_back();
  return *open_.front().second;
}

void Hdf5Reader::plan_epoch(std::int64_t epoch) {
  if (planned_epoch_ == epoch) return;
  order_.resize(chunks_.size());
  std::iota(order_.begin(), order_.end(), 0);
  if (opts_.shuffle)
    deterministic_shuffle(order_.data(), order_.size(), derive_seed(opts_.seed, 0, std::uint64_t(epoch)));
  windows_.clear();
  Window w{0, 0, 0};
  for (std::size_t i = 0; i < order_.size(); ++i) {
    const std::int64_t rows = chunks_[static_cast<std::size_t>(order_[i])].rows;
    if (w.rows + rows > opts_.buffer_rows) {
      windows_.push_back(w);
      w = Window{static_cast<std::int64_t>(i), static_cast<std::int64_t>(i), 0};
    }
    w.end = static_cast<std::int64_t>(i) + 1;
    w.rows += rows;
  }
  windows_.push_back(w);
  planned_epoch_ = epoch;
}

void Hdf5Reader::load_window() {
  plan_epoch(epoch_);
  const Window& w = windows_[static_cast<std::size_t>(window_)];
  buffer_.clear();
  loaded_ = false;
  for (std::int64_t i = w.first; i < w.end; ++i) {
    const Chunk& c = chunks_[static_cast<std::size_t>(order_[static_cast<std::size_t>(i)])];
    MixingBuffer::Slots slots = buffer_.append_contiguous(c.rows);
    shard(c.shard).read(c.row0, c.rows, slots.activations, slots.tokens, slots.sequence, slots.position);
  }
  if (opts_.shuffle)
    buffer_.shuffle(derive_seed(opts_.seed, 1, std::uint64_t(epoch_), std::uint64_t(window_)));
  buffer_.skip(offset_);
  loaded_ = true;
}

// Rows [lo, hi) of the next batch_rows of the stream are converted into the batch; the others are
// skipped without conversion.
ActivationRows Hdf5Reader::take(bool with_provenance, std::int64_t part, std::int64_t parts) {
  const std::int64_t n =
      batch_part_rows(part, parts, opts_.batch_rows, cat("activation store '", dir_.string(), "'"));
  const std::int64_t lo = part * n, hi = lo + n;
  const std::int64_t d = manifest_.meta.d;
  ActivationRows out;
  out.activations = staging_batch(n, d, opts_.device);
  if (with_provenance) {
    out.tokens = torch::empty({n}, torch::kInt);
    out.sequence = torch::empty({n}, torch::kLong);
    out.position = torch::empty({n}, torch::kInt);
  }
  for (std::int64_t pos = 0; pos < opts_.batch_rows;) {
    if (loaded_ && buffer_.size() == 0) {
      loaded_ = false;
      offset_ = 0;
      if (++window_ == static_cast<std::int64_t>(windows_.size())) {
        window_ = 0;
        ++epoch_;
      }
    }
    if (!loaded_) load_window();
    const std::int64_t until = pos < lo ? lo : pos < hi ? hi : opts_.batch_rows;
    const std::int64_t k = std::min(until - pos, buffer_.size());
    if (pos < lo || pos >= hi) {
      buffer_.skip(k);
    } else {
      const std::int64_t at = pos - lo;
      buffer_.take(k, out.activations.data_ptr<float>() + at * d,
                   with_provenance ? out.tokens.data_ptr<std::int32_t>() + at : nullptr,
                   with_provenance ? out.sequence.data_ptr<std::int64_t>() + at : nullptr,
                   with_provenance ? out.position.data_ptr<std::int32_t>() + at : nullptr);
    }
    pos += k;
    offset_ += k;
  }
  out.activations = to_batch_device(out.activations, opts_.device);
  return out;
}

torch::Tensor Hdf5Reader::next_batch() {
  return take(false, 0, 1).activations;
}

ActivationRows Hdf5Reader::next_rows() {
  return take(true, 0, 1);
}

ActivationRows Hdf5Reader::next_part(std::int64_t part, std::int64_t parts, bool with_provenance) {
  return take(with_provenance, part, parts);
}

nlohmann::json Hdf5Reader::cursor() const {
  return {{"kind", kCursorKind},
          {"store", store_id_},
          {"seed", opts_.seed},
          {"buffer_rows", opts_.buffer_rows},
          {"shuffle", opts_.shuffle},
          {"epoch", epoch_},
          {"window", window_},
          {"offset", offset_},
          {"rows_per_epoch", rows_per_epoch_}};
}

void Hdf5Reader::restore(const nlohmann::json& c) {
  const std::string where = cat("activation store '", dir_.string(), "': cannot restore reader cursor");
  SAELAB_CHECK(c.is_object() && c.value("kind", "") == kCursorKind, FormatError, where, " ", c.dump(),
               ": it was not saved by an hdf5 store reader");
  std::int64_t epoch = 0, window = 0, offset = 0;
  try {
    auto same = [&](const char* key, const nlohmann::json& mine) {
      SAELAB_CHECK(c.at(key) == mine, FormatError, where, ": it was saved with ", key, " = ",
                   c.at(key).dump(), " but this reader has ", key, " = ", mine.dump(),
                   "; the batches would differ. Open the reader with the original settings");
    };
    same("store", store_id_);
    same("seed", opts_.seed);
    same("buffer_rows", opts_.buffer_rows);
    same("shuffle", opts_.shuffle);
    epoch = c.at("epoch").get<std::int64_t>();
    window = c.at("window").get<std::int64_t>();
    offset = c.at("offset").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat(where, " ", c.dump(), ": ", e.what()));
  }
  SAELAB_CHECK(epoch >= 0, FormatError, where, ": epoch ", epoch, " is negative");
  plan_epoch(epoch);
  SAELAB_CHECK(window >= 0 && window < static_cast<std::int64_t>(windows_.size()) && offset >= 0 &&
                   offset <= windows_[static_cast<std::size_t>(window)].rows,
               FormatError, where, ": window ", window, " offset ", offset, " is outside epoch ", epoch, " (",
               windows_.size(), " windows)");
  epoch_ = epoch;
  window_ = window;
  offset_ = offset;
  loaded_ = false;
  buffer_.clear();
}

}  // namespace saelab::hdf5_store
