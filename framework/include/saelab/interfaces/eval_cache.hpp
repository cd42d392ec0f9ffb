#pragma once
// Model runs that do not depend on the SAE, kept across the evaluations of one process (the runs
// of a sweep): the clean run's logits and losses, the ablated runs' losses and KL, the probe
// corpus's hook activations. An evaluator looks a run up by a key that names what was run, the
// model, the hook and the exact tokens (and positions), so a hit is the same computation.
#include <cstdint>
#include <map>
#include <string>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"

namespace saelab {

class SAELAB_API EvalCache {
 public:
  using Entry = std::map<std::string, torch::Tensor>;
  // Past max_bytes new entries are not kept (evaluation still runs, only slower).
  explicit EvalCache(std::int64_t max_bytes = std::int64_t(6) << 30) : max_bytes_(max_bytes) {}
  const Entry* find(const std::string& key);  // counts a hit or a miss
  void put(const std::string& key, Entry entry);
  std::int64_t hits() const { return hits_; }
  std::int64_t misses() const { return misses_; }
  std::int64_t bytes() const { return bytes_; }

 private:
  std::map<std::string, Entry> entries_;
  std::int64_t max_bytes_, bytes_ = 0, hits_ = 0, misses_ = 0;
};

// The entry under `key`: from the cache (counting *reused), else computed by fn() and kept.
// Without a cache it is fn() itself.
template <class F>
EvalCache::Entry cached(EvalCache* cache, const std::string& key, F&& fn, std::int64_t* reused = nullptr) {
  if (const auto* hit = cache ? cache->find(key) : nullptr) {
    if (reused) ++*reused;
    return *hit;
  }
  EvalCache::Entry entry = fn();
  if (cache) cache->put(key, entry);
  return entry;
}

// "<what>|<model config hash>|<hook>|<SHA-256 of the tensors' shapes and bytes>"
SAELAB_API std::string eval_cache_key(const std::string& what, const SourceInfo& model,
                                      const std::string& hook, std::initializer_list<torch::Tensor> inputs);

}  // namespace saelab
