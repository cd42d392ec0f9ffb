// SharedReader (data/shared_reader.hpp).
#include "saelab/data/shared_reader.hpp"

#include <algorithm>

#include "saelab/core/error.hpp"

namespace saelab {

class SharedReader::View : public ActivationReader {
 public:
  View(SharedReader& owner, int index) : owner_(owner), index_(index) {}
  torch::Tensor next_batch() override { return owner_.read(index_).activations; }
  ActivationRows next_rows() override { return owner_.read(index_); }
  std::int64_t rows_per_epoch() const override { return owner_.source_.rows_per_epoch(); }
  std::int64_t d() const override { return owner_.source_.d(); }
  nlohmann::json cursor() const override { return owner_.cursor_of(index_); }
  void restore(const nlohmann::json& cursor) override { owner_.restore(index_, cursor); }

 private:
  SharedReader& owner_;
  int index_;
};

SharedReader::SharedReader(ActivationReader& source, int consumers) : source_(source) {
  SAELAB_CHECK(consumers >= 1, Error, "SharedReader: needs at least one consumer, got ", consumers);
  positions_.assign(static_cast<std::size_t>(consumers), 0);
  for (int i = 0; i < consumers; ++i) views_.push_back(std::make_unique<View>(*this, i));
}

SharedReader::~SharedReader() = default;

ActivationReader& SharedReader::consumer(int i) {
  SAELAB_CHECK(i >= 0 && i < consumers(), Error, "SharedReader: consumer ", i, " out of [0, ", consumers(),
               ")");
  return *views_[static_cast<std::size_t>(i)];
}

ActivationRows SharedReader::read(int consumer) {
  std::int64_t& pos = positions_[static_cast<std::size_t>(consumer)];
  const std::int64_t offset = pos - first_;
  if (offset == std::int64_t(queue_.size())) {
    Item item{source_.cursor(), source_.next_rows()};
    queue_.push_back(std::move(item));
    ++source_batches_;
  }
  ActivationRows rows = queue_[static_cast<std::size_t>(offset)].rows;
  ++pos;
  trim();
  return rows;
}

void SharedReader::trim() {
  const std::int64_t slowest = *std::min_element(positions_.begin(), positions_.end());
  while (!queue_.empty() && first_ < slowest) {
    queue_.pop_front();
    ++first_;
  }
}

nlohmann::json SharedReader::cursor_of(int consumer) const {
  const std::int64_t offset = positions_[static_cast<std::size_t>(consumer)] - first_;
  return offset < std::int64_t(queue_.size()) ? queue_[static_cast<std::size_t>(offset)].cursor_before
                                              : source_.cursor();
}

void SharedReader::restore(int consumer, const nlohmann::json& cursor) {
  std::int64_t& pos = positions_[static_cast<std::size_t>(consumer)];
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    if (queue_[i].cursor_before == cursor) {
      pos = first_ + std::int64_t(i);
      return;
    }
  }
  const std::int64_t end = first_ + std::int64_t(queue_.size());
  if (cursor == source_.cursor()) {
    pos = end;
    return;
  }
  const bool all_at_end =
      std::all_of(positions_.begin(), positions_.end(), [&](std::int64_t p) { return p == end; });
  SAELAB_CHECK(all_at_end, Error, "shared reader: consumer ", consumer, " asks to continue from ",
               cursor.dump(), ", which no other consumer is at (the source is at ", source_.cursor().dump(),
               "); SAEs trained on one shared reader resume together, from checkpoints of the same step");
  source_.restore(cursor);
  queue_.clear();
  first_ = end;
}

}  // namespace saelab
