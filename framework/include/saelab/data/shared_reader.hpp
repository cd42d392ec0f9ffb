#pragma once
// One reader's batches handed to several consumers, each seeing the whole stream as if it had the
// reader to itself: what trains several SAEs on one store while reading it once (train.saes).
//
// Batches the source produced and some consumer has not read yet wait in a queue, with the source's
// cursor from before each one; a batch leaves the queue once every consumer has read it. Consumers
// that advance in turn (one training step each) keep the queue at one batch, plus whatever one of
// them reads ahead (the first batches of initialisation, resampling's scoring inputs).
//
// A consumer's cursor() is the source's cursor before its next batch, so a checkpoint holds an
// ordinary cursor of the source. restore() accepts a cursor of a batch still queued (or the
// source's own position); any other cursor moves the source itself, which is allowed only while no
// consumer has read past the others (all at the head of the stream, as when every consumer resumes
// from a checkpoint of the same step). Otherwise it throws, naming both positions.
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_store.hpp"

namespace saelab {

class SAELAB_API SharedReader {
 public:
  // `source` must outlive this object and its consumers.
  SharedReader(ActivationReader& source, int consumers);
  ~SharedReader();
  SharedReader(const SharedReader&) = delete;
  SharedReader& operator=(const SharedReader&) = delete;

  ActivationReader& consumer(int i);
  int consumers() const { return static_cast<int>(views_.size()); }
  std::int64_t queued() const { return static_cast<std::int64_t>(queue_.size()); }
  // Batches taken from the source so far (each read once, whatever the number of consumers).
  std::int64_t source_batches() const { return source_batches_; }

 private:
  class View;
  struct Item {
    nlohmann::json cursor_before;
    ActivationRows rows;
  };
  ActivationRows read(int consumer);
  nlohmann::json cursor_of(int consumer) const;
  void restore(int consumer, const nlohmann::json& cursor);
  void trim();

  ActivationReader& source_;
  std::deque<Item> queue_;
  std::int64_t first_ = 0;               // stream index of queue_.front()
  std::vector<std::int64_t> positions_;  // each consumer's next stream index
  std::vector<std::unique_ptr<View>> views_;
  std::int64_t source_batches_ = 0;
};

}  // namespace saelab
