#pragma once
// StreamingReader: an ActivationReader fed live by a producer (a model harvesting activations),
// with no store on disk. Rows pass through the same MixingBuffer the store reader uses.
//
// Mixing: the buffer is filled to capacity, shuffled, and drained until half empty; then it is
// topped up from the producer and everything it holds is reshuffled (with a seed derived from
// (seed, refill number)). So a batch mixes rows from roughly the last buffer_rows produced.
// With shuffle=false rows come out in production order.
//
// Epochs are the producer's business: a producer that loops over its corpus gives infinite
// epochs. When the producer is exhausted, the buffer is drained (the last batch may be short)
// and the next call throws.
//
// Cursor semantics are WEAKER than the store reader's, because a live producer cannot rewind:
//   cursor()  = {kind: "streaming", seed, rows_emitted, refills, next_sequence}
//   restore() resets the counters and the shuffle stream and empties the buffer. The caller must
//   restart its producer at corpus sequence `next_sequence` (resume_sequence(cursor)). Rows that
//   were waiting in the buffer at checkpoint time (at most buffer_rows, plus the unconsumed rest of
//   the producer's last answer) are skipped, never replayed; no row is emitted twice, provided the
//   producer numbers sequences in increasing corpus order. The batches after a restore are not
//   the ones the original would have produced.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/data/mixing_buffer.hpp"

namespace saelab {

// Next rows from the live source: activations [n, d] float32 (any device), tokens [n] int32,
// sequence [n] int64, position [n] int32 (provenance tensors may be undefined). std::nullopt (or
// zero rows) means the source is exhausted.
using RowProducer = std::function<std::optional<ActivationRows>()>;

struct SAELAB_API StreamingReaderOptions {
  ReaderOptions reader;                  // seed, buffer_rows (>= batch_rows), batch_rows, device
  RowDtype storage = RowDtype::Float32;  // dtype rows wait in; float16 halves buffer memory
  std::int64_t rows_per_epoch = -1;      // reported by rows_per_epoch(); -1 = unknown
};

class SAELAB_API StreamingReader final : public ActivationReader {
 public:
  StreamingReader(std::int64_t d, RowProducer producer, StreamingReaderOptions opts);

  torch::Tensor next_batch() override;  // [batch_rows, d] float32 on opts.reader.device
  ActivationRows next_rows() override;  // provenance on the CPU
  std::int64_t rows_per_epoch() const override { return opts_.rows_per_epoch; }
  std::int64_t d() const override { return d_; }
  nlohmann::json cursor() const override;
  void restore(const nlohmann::json& cursor) override;

  // The corpus sequence a restarted producer must begin at after restore(cursor).
  static std::int64_t resume_sequence(const nlohmann::json& cursor);

 private:
  ActivationRows take(bool with_provenance);
  void refill();
  bool pull();  // moves pending/produced rows into the buffer; false when the producer is done

  std::int64_t d_;
  RowProducer producer_;
  StreamingReaderOptions opts_;
  MixingBuffer buffer_;
  std::optional<ActivationRows> pending_;  // rest of the producer's last answer (CPU, checked)
  std::int64_t pending_offset_ = 0;
  bool exhausted_ = false;
  std::int64_t rows_emitted_ = 0;
  std::int64_t refills_ = 0;
  std::int64_t next_sequence_ = 0;  // 1 + largest sequence index moved into the buffer
};

}  // namespace saelab
