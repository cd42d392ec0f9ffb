#include "saelab/data/mixing_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <ATen/Parallel.h>

#include "saelab/core/det_rng.hpp"
#include "saelab/core/error.hpp"

namespace saelab {

MixingBuffer::MixingBuffer(std::int64_t capacity_rows, std::int64_t d, RowDtype storage)
    : capacity_(capacity_rows), d_(d), storage_(storage) {
  SAELAB_CHECK(capacity_rows >= 1 && capacity_rows <= std::numeric_limits<std::int32_t>::max(), Error,
               "mixing buffer: capacity of ", capacity_rows, " rows is out of range; allowed 1 .. 2^31-1");
  SAELAB_CHECK(d >= 1, Error, "mixing buffer: row width d = ", d, " must be at least 1");
  row_bytes_ = static_cast<std::size_t>(d) * row_dtype_bytes(storage);
  const auto cap = static_cast<std::size_t>(capacity_rows);
  // new[] without value-initialisation: pages stay untouched (and out of RSS) until filled.
  act_.reset(new unsigned char[cap * row_bytes_]);
  tok_.reset(new std::int32_t[cap]);
  seq_.reset(new std::int64_t[cap]);
  pos_.reset(new std::int32_t[cap]);
  live_.reserve(cap);
  recycled_.reserve(cap);
}

void MixingBuffer::clear() {
  live_.clear();
  head_ = 0;
  fresh_ = 0;
  recycled_.clear();
}

MixingBuffer::Slots MixingBuffer::append_contiguous(std::int64_t n) {
  SAELAB_CHECK(n >= 0 && fresh_ + n <= capacity_, Error, "mixing buffer: ", n,
               " contiguous rows do not fit (", fresh_, " of ", capacity_,
               " slots used since clear()); this is a bug in the reader");
  const std::int64_t first = fresh_;
  for (std::int64_t i = 0; i < n; ++i) live_.push_back(static_cast<std::int32_t>(first + i));
  fresh_ += n;
  return Slots{act_.get() + static_cast<std::size_t>(first) * row_bytes_, tok_.get() + first,
               seq_.get() + first, pos_.get() + first};
}

std::int32_t MixingBuffer::next_free_slot() {
  if (!recycled_.empty()) {
    std::int32_t s = recycled_.back();
    recycled_.pop_back();
    return s;
  }
  return static_cast<std::int32_t>(fresh_++);
}

void MixingBuffer::append(const ActivationRows& rows, std::int64_t begin, std::int64_t end) {
  SAELAB_CHECK(end - begin <= free_rows(), Error, "mixing buffer: ", end - begin, " rows do not fit in the ",
               free_rows(), " free slots");
  const torch::Tensor& a = rows.activations;
  SAELAB_CHECK(a.dim() == 2 && a.size(1) == d_ && a.scalar_type() == torch::kFloat && a.is_contiguous() &&
                   a.device().is_cpu(),
               Error, "mixing buffer: rows must be contiguous CPU float32 [n, ", d_, "], got ", a.sizes(),
               " ", a.dtype());
  const float* src = a.data_ptr<float>();
  const std::int32_t* tok = rows.tokens.defined() ? rows.tokens.data_ptr<std::int32_t>() : nullptr;
  const std::int64_t* seq = rows.sequence.defined() ? rows.sequence.data_ptr<std::int64_t>() : nullptr;
  const std::int32_t* pos = rows.position.defined() ? rows.position.data_ptr<std::int32_t>() : nullptr;
  for (std::int64_t i = begin; i < end; ++i) {
    const std::int32_t s = next_free_slot();
    convert_from_f32(storage_, src + i * d_, act_.get() + static_cast<std::size_t>(s) * row_bytes_,
                     static_cast<std::size_t>(d_));
    tok_[s] = tok ? tok[i] : -1;
    seq_[s] = seq ? seq[i] : -1;
    pos_[s] = pos ? pos[i] : -1;
    live_.push_back(s);
  }
}

void MixingBuffer::shuffle(std::uint64_t seed) {
  deterministic_shuffle(live_.data() + head_, static_cast<std::uint64_t>(size()), seed);
}

void MixingBuffer::take(std::int64_t n, float* act, std::int32_t* tokens, std::int64_t* sequence,
                        std::int32_t* position) {
  SAELAB_CHECK(n >= 0 && n <= size(), Error, "mixing buffer: asked for ", n, " rows, holds ", size());
  const std::int32_t* order = live_.data() + head_;
  const unsigned char* base = act_.get();
  const std::int64_t d = d_;
  const RowDtype t = storage_;
  const std::size_t rb = row_bytes_;
  // Rows are independent: convert them in parallel, ~32k elements per task.
  const std::int64_t grain = std::max<std::int64_t>(1, 32768 / d);
  at::parallel_for(0, n, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      convert_to_f32(t, base + static_cast<std::size_t>(order[i]) * rb, act + i * d,
                     static_cast<std::size_t>(d));
    }
  });
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t s = order[i];
    if (tokens) tokens[i] = tok_[s];
    if (sequence) sequence[i] = seq_[s];
    if (position) position[i] = pos_[s];
  }
  release_front(n);
}

void MixingBuffer::skip(std::int64_t n) {
  SAELAB_CHECK(n >= 0 && n <= size(), Error, "mixing buffer: asked to skip ", n, " rows, holds ", size());
  release_front(n);
}

void MixingBuffer::release_front(std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) recycled_.push_back(live_[head_ + i]);
  head_ += n;
  // Drop the consumed prefix once it dominates, so live_ never grows past capacity.
  if (head_ > 0 && head_ * 2 >= static_cast<std::int64_t>(live_.size())) {
    live_.erase(live_.begin(), live_.begin() + head_);
    head_ = 0;
  }
}

torch::Tensor staging_batch(std::int64_t n, std::int64_t d, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(torch::kCPU);
  if (device.is_cuda()) opts = opts.pinned_memory(true);
  return torch::empty({n, d}, opts);
}

torch::Tensor to_batch_device(const torch::Tensor& staged, const torch::Device& device) {
  if (device.is_cpu()) return staged;
  // The caching host allocator keeps the pinned block alive until the copy has completed.
  return staged.to(device, /*non_blocking=*/true);
}

}  // namespace saelab
