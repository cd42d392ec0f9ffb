#include "saelab/interfaces/eval_cache.hpp"

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab {

const EvalCache::Entry* EvalCache::find(const std::string& key) {
  const auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  return &it->second;
}

void EvalCache::put(const std::string& key, Entry entry) {
  std::int64_t size = 0;
  for (auto& [name, t] : entry) {
    t = t.detach().contiguous();
    size += t.numel() * std::int64_t(t.element_size());
  }
  if (bytes_ + size > max_bytes_ || entries_.count(key)) return;
  bytes_ += size;
  entries_.emplace(key, std::move(entry));
}

std::string eval_cache_key(const std::string& what, const SourceInfo& model, const std::string& hook,
                           std::initializer_list<torch::Tensor> inputs) {
  Sha256 h;
  for (const auto& input : inputs) {
    const auto t = input.to(torch::kCPU).contiguous();
    h.update(cat(t.scalar_type(), t.sizes(), ";"));
    h.update(t.data_ptr(), std::size_t(t.numel()) * t.element_size());
  }
  return cat(what, "|", model.config_hash, "|", model.model_id, "|", hook, "|", h.hex_digest());
}

}  // namespace saelab
