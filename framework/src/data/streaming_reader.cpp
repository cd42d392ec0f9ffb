#include "saelab/data/streaming_reader.hpp"

#include <algorithm>

#include "saelab/core/det_rng.hpp"
#include "saelab/core/error.hpp"

namespace saelab {

namespace {
constexpr const char* kCursorKind = "streaming";

// Validates one answer of the producer and brings it to contiguous CPU tensors of fixed dtypes.
ActivationRows checked_rows(ActivationRows r, std::int64_t d) {
  const torch::Tensor& a = r.activations;
  SAELAB_CHECK(a.dim() == 2 && a.size(1) == d, Error,
               "streaming reader: the producer returned activations of shape ", a.sizes(), "; expected [n, ",
               d, "]");
  const std::int64_t n = a.size(0);
  auto cpu = [&](const torch::Tensor& t, torch::ScalarType st, const char* name) {
    if (!t.defined()) return t;
    SAELAB_CHECK(t.dim() == 1 && t.size(0) == n, Error, "streaming reader: the producer returned ", name,
                 " of shape ", t.sizes(), "; expected [", n, "]");
    return t.to(torch::kCPU, st).contiguous();
  };
  r.activations = a.to(torch::kCPU, torch::kFloat).contiguous();
  r.tokens = cpu(r.tokens, torch::kInt, "tokens");
  r.sequence = cpu(r.sequence, torch::kLong, "sequence");
  r.position = cpu(r.position, torch::kInt, "position");
  return r;
}
}  // namespace

StreamingReader::StreamingReader(std::int64_t d, RowProducer producer, StreamingReaderOptions opts)
    : d_(d),
      producer_(std::move(producer)),
      opts_(opts),
      buffer_(opts_.reader.buffer_rows, d, opts_.storage) {
  SAELAB_CHECK(opts_.reader.batch_rows >= 1 && opts_.reader.batch_rows <= opts_.reader.buffer_rows, Error,
               "streaming reader: batch_rows = ", opts_.reader.batch_rows,
               " must be between 1 and buffer_rows = ", opts_.reader.buffer_rows);
  SAELAB_CHECK(static_cast<bool>(producer_), Error, "streaming reader: no producer given");
}

bool StreamingReader::pull() {
  if (!pending_) {
    if (exhausted_) return false;
    std::optional<ActivationRows> got = producer_();
    if (!got || !got->activations.defined() || got->activations.numel() == 0) {
      exhausted_ = true;
      return false;
    }
    pending_ = checked_rows(std::move(*got), d_);
    pending_offset_ = 0;
  }
  const std::int64_t n = pending_->activations.size(0);
  const std::int64_t k = std::min(n - pending_offset_, buffer_.free_rows());
  buffer_.append(*pending_, pending_offset_, pending_offset_ + k);
  if (pending_->sequence.defined() && k > 0) {
    const std::int64_t* s = pending_->sequence.data_ptr<std::int64_t>();
    for (std::int64_t i = pending_offset_; i < pending_offset_ + k; ++i)
      next_sequence_ = std::max(next_sequence_, s[i] + 1);
  }
  pending_offset_ += k;
  if (pending_offset_ == n) pending_.reset();
  return true;
}

void StreamingReader::refill() {
  while (buffer_.free_rows() > 0 && pull()) {
  }
  if (opts_.reader.shuffle)
    buffer_.shuffle(derive_seed(opts_.reader.seed, static_cast<std::uint64_t>(refills_)));
  ++refills_;
}

ActivationRows StreamingReader::take(bool with_provenance) {
  const std::int64_t want = opts_.reader.batch_rows;
  if (!exhausted_ && buffer_.size() < std::max(buffer_.capacity() / 2, want)) refill();
  const std::int64_t n = std::min(want, buffer_.size());
  SAELAB_CHECK(n > 0, Error, "streaming reader: the producer is exhausted after ", rows_emitted_,
               " rows; give it a source that loops over its corpus, or stop training earlier");
  ActivationRows out;
  out.activations = staging_batch(n, d_, opts_.reader.device);
  if (with_provenance) {
    out.tokens = torch::empty({n}, torch::kInt);
    out.sequence = torch::empty({n}, torch::kLong);
    out.position = torch::empty({n}, torch::kInt);
  }
  buffer_.take(n, out.activations.data_ptr<float>(),
               with_provenance ? out.tokens.data_ptr<std::int32_t>() : nullptr,
               with_provenance ? out.sequence.data_ptr<std::int64_t>() : nullptr,
               with_provenance ? out.position.data_ptr<std::int32_t>() : nullptr);
  rows_emitted_ += n;
  out.activations = to_batch_device(out.activations, opts_.reader.device);
  return out;
}

torch::Tensor StreamingReader::next_batch() {
  return take(false).activations;
}

ActivationRows StreamingReader::next_rows() {
  return take(true);
}

nlohmann::json StreamingReader::cursor() const {
  return {{"kind", kCursorKind},
          {"seed", opts_.reader.seed},
          {"rows_emitted", rows_emitted_},
          {"refills", refills_},
          {"next_sequence", next_sequence_}};
}

void StreamingReader::restore(const nlohmann::json& c) {
  SAELAB_CHECK(c.is_object() && c.value("kind", "") == kCursorKind, FormatError,
               "streaming reader: cannot restore from cursor ", c.dump(),
               "; expected one saved by a streaming reader (kind \"streaming\")");
  try {
    const auto seed = c.at("seed").get<std::uint64_t>();
    SAELAB_CHECK(seed == opts_.reader.seed, FormatError, "streaming reader: cursor was saved with seed ",
                 seed, " but this reader has seed ", opts_.reader.seed);
    rows_emitted_ = c.at("rows_emitted").get<std::int64_t>();
    refills_ = c.at("refills").get<std::int64_t>();
    next_sequence_ = c.at("next_sequence").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat("streaming reader: malformed cursor ", c.dump(), ": ", e.what()));
  }
  buffer_.clear();
  pending_.reset();
  pending_offset_ = 0;
  exhausted_ = false;
}

std::int64_t StreamingReader::resume_sequence(const nlohmann::json& c) {
  SAELAB_CHECK(c.is_object() && c.contains("next_sequence") && c["next_sequence"].is_number_integer(),
               FormatError, "streaming reader: cursor ", c.dump(), " has no integer next_sequence");
  return c["next_sequence"].get<std::int64_t>();
}

}  // namespace saelab
