#pragma once
// MixingBuffer: a fixed-capacity pool of activation rows, kept in their storage dtype (float16 rows
// take half the memory of float32 ones), that hands rows out in a shuffled order.
//
// Shared by the on-disk store reader and the streaming reader:
//   - the store reader loads a window of whole chunks straight into contiguous slots
//     (append_contiguous), shuffles, drains it completely, then clear()s: the window's contents
//     depend only on (seed, epoch, window), which is what makes its cursor exact;
//   - the streaming reader tops the buffer up from a producer (append) whenever it is half empty
//     and reshuffles everything it holds, so rows mix across refills.
// Memory is capacity * d * sizeof(storage dtype) plus 16 bytes of provenance and 8 bytes of
// bookkeeping per row, allocated once; pages are touched only when rows land in them.
#include <cstdint>
#include <memory>
#include <vector>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/data/row_dtype.hpp"

namespace saelab {

class SAELAB_API MixingBuffer {
 public:
  MixingBuffer(std::int64_t capacity_rows, std::int64_t d, RowDtype storage);
  MixingBuffer(const MixingBuffer&) = delete;
  MixingBuffer& operator=(const MixingBuffer&) = delete;

  std::int64_t capacity() const { return capacity_; }
  std::int64_t d() const { return d_; }
  RowDtype storage() const { return storage_; }
  std::int64_t size() const { return static_cast<std::int64_t>(live_.size()) - head_; }
  std::int64_t free_rows() const { return capacity_ - size(); }

  // Forgets every row; slots are handed out from 0 again.
  void clear();

  // Raw destination for `n` rows that the caller fills itself (e.g. an HDF5 read). Rows are laid
  // out [n, d] in the storage dtype; provenance arrays are [n]. Hands out only slots never used
  // since the last clear() (those are contiguous); throws when they run out.
  struct Slots {
    void* activations;       // [n, d] storage dtype
    std::int32_t* tokens;    // [n]
    std::int64_t* sequence;  // [n]
    std::int32_t* position;  // [n]
  };
  Slots append_contiguous(std::int64_t n);

  // Copies rows [begin, end) of `rows` (CPU; activations [n, d] float32) in, converting to the
  // storage dtype. Fills slots freed by take() first. Throws if they do not fit.
  void append(const ActivationRows& rows, std::int64_t begin, std::int64_t end);

  // Permutes the order in which the rows held now will be handed out.
  void shuffle(std::uint64_t seed);

  // Hands out the next n rows: activations converted to float32 into act [n, d] (row stride d);
  // provenance into the other arrays when they are not null. Their slots become free.
  void take(std::int64_t n, float* act, std::int32_t* tokens, std::int64_t* sequence, std::int32_t* position);
  // Drops the next n rows without converting them.
  void skip(std::int64_t n);

 private:
  std::int32_t next_free_slot();
  void release_front(std::int64_t n);

  std::int64_t capacity_;
  std::int64_t d_;
  RowDtype storage_;
  std::size_t row_bytes_;
  std::unique_ptr<unsigned char[]> act_;  // [capacity, d] storage dtype, uninitialised
  std::unique_ptr<std::int32_t[]> tok_;
  std::unique_ptr<std::int64_t[]> seq_;
  std::unique_ptr<std::int32_t[]> pos_;
  std::vector<std::int32_t> live_;  // slots of rows held, in hand-out order from head_
  std::int64_t head_ = 0;
  std::int64_t fresh_ = 0;              // slots >= fresh_ unused since clear()
  std::vector<std::int32_t> recycled_;  // slots freed by take()/skip()
};

// Where a batch is take()n into: a CPU float32 [n, d] tensor, pinned when the batch is headed for a
// CUDA device so that to_batch_device() can copy it asynchronously.
SAELAB_API torch::Tensor staging_batch(std::int64_t n, std::int64_t d, const torch::Device& device);
SAELAB_API torch::Tensor to_batch_device(const torch::Tensor& staged, const torch::Device& device);

}  // namespace saelab
