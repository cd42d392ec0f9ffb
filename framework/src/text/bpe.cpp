// Byte-pair merging for one pre-token, and the hash maps it runs on.
//
// Semantics (HF tokenizers' Word::merge_all, tiktoken's byte_pair_encode): repeatedly merge the
// adjacent pair with the lowest rank, the leftmost on ties. Short pieces (almost all of them) use
// flat arrays; long ones a min-heap keyed (rank, position) over a linked list, with stale entries
// dropped when popped, so 1 MB of one letter costs O(n log n) rather than O(n^2).
#include <climits>
#include <cstring>
#include <functional>
#include <algorithm>

#include "text/bpe_vocab.hpp"

namespace saelab::text::detail {

namespace {

std::uint64_t table_size_for(std::size_t n) {
  std::uint64_t size = 16;
  while (size < 2 * n + 1) size <<= 1;  // load factor <= 0.5 keeps probe chains short
  return size;
}

constexpr std::size_t kSmallPiece = 64;

void merge_small(const Vocab& v, const unsigned char* p, std::size_t n, std::vector<std::int32_t>& out) {
  std::int32_t ids[kSmallPiece];
  std::int32_t ranks[kSmallPiece];   // ranks[i]: rule for (ids[i], ids[i+1]); INT_MAX = none
  std::int32_t merged[kSmallPiece];  // merged[i]: what that pair becomes
  auto set_pair = [&](std::size_t i) {
    const MergeRule r = v.merges.find(ids[i], ids[i + 1]);
    ranks[i] = r.rank < 0 ? INT_MAX : r.rank;
    merged[i] = r.merged;
  };
  for (std::size_t i = 0; i < n; ++i) ids[i] = v.byte_token[p[i]];
  for (std::size_t i = 0; i + 1 < n; ++i) set_pair(i);
  std::size_t m = n;
  while (m > 1) {
    std::int32_t best = INT_MAX;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < m; ++i) {
      if (ranks[i] < best) {
        best = ranks[i];
        at = i;
      }
    }
    if (best == INT_MAX) break;
    ids[at] = merged[at];
    // Drop ids[at + 1] and pair at + 1; later pairs shift down by one.
    std::memmove(ids + at + 1, ids + at + 2, (m - at - 2) * sizeof(std::int32_t));
    if (m >= at + 3) {
      std::memmove(ranks + at + 1, ranks + at + 2, (m - at - 3) * sizeof(std::int32_t));
      std::memmove(merged + at + 1, merged + at + 2, (m - at - 3) * sizeof(std::int32_t));
    }
    --m;
    if (at > 0) set_pair(at - 1);
    if (at + 1 < m) set_pair(at);
  }
  out.insert(out.end(), ids, ids + m);
}

void merge_heap(const Vocab& v, const unsigned char* p, std::size_t n, std::vector<std::int32_t>& out) {
  // Symbol i starts at byte i; a merge keeps the left symbol and marks the right one dead (-1).
  std::vector<std::int32_t> id(n), prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    id[i] = v.byte_token[p[i]];
    prev[i] = static_cast<std::int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
  }
  // (rank << 32 | position): the smallest entry is the lowest rank, leftmost first.
  std::vector<std::uint64_t> heap;
  heap.reserve(n);
  const std::greater<> later;  // std heaps are max-heaps; this makes a min-heap
  auto entry = [&](std::int32_t pos) -> std::uint64_t {
    const std::int32_t nx = next[pos];
    if (nx < 0) return ~std::uint64_t{0};
    const MergeRule r = v.merges.find(id[pos], id[nx]);
    if (r.rank < 0) return ~std::uint64_t{0};
    return (std::uint64_t(std::uint32_t(r.rank)) << 32) | std::uint32_t(pos);
  };
  auto push = [&](std::int32_t pos) {
    const std::uint64_t e = entry(pos);
    if (e == ~std::uint64_t{0}) return;
    heap.push_back(e);
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const std::uint64_t e = entry(static_cast<std::int32_t>(i));
    if (e != ~std::uint64_t{0}) heap.push_back(e);
  }
  std::make_heap(heap.begin(), heap.end(), later);  // O(n), unlike n pushes
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const std::uint64_t top = heap.back();
    heap.pop_back();
    const auto rank = static_cast<std::int32_t>(top >> 32);
    const auto pos = static_cast<std::int32_t>(top & 0xffffffffu);
    if (id[pos] < 0 || next[pos] < 0) continue;
    const std::int32_t nx = next[pos];
    const MergeRule r = v.merges.find(id[pos], id[nx]);
    if (r.rank != rank) continue;  // stale: one side has changed since this entry was pushed
    id[pos] = r.merged;
    id[nx] = -1;
    next[pos] = next[nx];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  for (std::int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

}  // namespace

std::uint64_t TokenMap::hash(std::string_view s) {
  return std::hash<std::string_view>{}(s);
}

void TokenMap::reserve(std::size_t n) {
  const std::uint64_t size = table_size_for(n);
  slots_.assign(size, Slot{0, 0});
  mask_ = size - 1;
}

bool TokenMap::insert(const std::vector<std::string>& keys, std::int32_t id) {
  const std::string& key = keys[static_cast<std::size_t>(id)];
  const std::uint64_t h = hash(key);
  const auto tag = static_cast<std::uint32_t>(h >> 32);
  for (std::uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.id1 == 0) {
      s = Slot{tag, id + 1};
      return true;
    }
    if (s.tag == tag && keys[static_cast<std::size_t>(s.id1 - 1)] == key) return false;
  }
}

std::int32_t TokenMap::find(const std::vector<std::string>& keys, std::string_view key) const {
  if (slots_.empty()) return -1;
  const std::uint64_t h = hash(key);
  const auto tag = static_cast<std::uint32_t>(h >> 32);
  for (std::uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id1 == 0) return -1;
    if (s.tag == tag && keys[static_cast<std::size_t>(s.id1 - 1)] == key) return s.id1 - 1;
  }
}

void PairMap::reserve(std::size_t n) {
  const std::uint64_t size = table_size_for(n);
  slots_.assign(size, Slot{kEmpty, {}});
  mask_ = size - 1;
  size_ = 0;
}

bool PairMap::insert(std::int32_t left, std::int32_t right, MergeRule rule) {
  const std::uint64_t key = pack(left, right);
  for (std::uint64_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) return false;
    if (s.key == kEmpty) {
      s = Slot{key, rule};
      ++size_;
      return true;
    }
  }
}

void bpe_merge(const Vocab& vocab, std::string_view piece, std::vector<std::int32_t>& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  if (piece.size() <= kSmallPiece)
    merge_small(vocab, p, piece.size(), out);
  else
    merge_heap(vocab, p, piece.size(), out);
}

// The piece without the bytes the vocabulary has no token for. Hugging Face's BPE with neither an
// unknown token nor byte fallback skips such characters before merging, so their neighbours may
// merge across the gap; dropping them first reproduces that.
std::string_view known_bytes(const Vocab& vocab, std::string_view piece, std::string& scratch) {
  scratch.clear();
  for (char c : piece)
    if (vocab.byte_token[static_cast<unsigned char>(c)] >= 0) scratch.push_back(c);
  return scratch;
}

void bpe_encode(const Vocab& vocab, std::string_view piece, std::vector<std::int32_t>& out) {
  std::string scratch;
  if (vocab.missing_bytes) piece = known_bytes(vocab, piece, scratch);
  if (piece.empty()) return;
  if (piece.size() == 1) {
    out.push_back(vocab.byte_token[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const std::int32_t id = vocab.find(piece);
  if (id >= 0 && vocab.whole[static_cast<std::size_t>(id)]) {
    out.push_back(id);
    return;
  }
  bpe_merge(vocab, piece, out);
}

}  // namespace saelab::text::detail
