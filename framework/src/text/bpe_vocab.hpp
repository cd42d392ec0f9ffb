#pragma once
// Internal: the loaded vocabulary and merge rules, with lookups sized for the encoder's hot loop.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "saelab/text/bpe_tokenizer.hpp"

namespace saelab::text::detail {

// Open-addressing map from a token's bytes to its id. The keys live in Vocab::bytes, passed to
// every call (holding a pointer would dangle when the Vocab moves).
class TokenMap {
 public:
  void reserve(std::size_t n);
  // -1 when absent.
  std::int32_t find(const std::vector<std::string>& keys, std::string_view key) const;
  // Adds keys[id]; returns false when the same bytes are already present.
  bool insert(const std::vector<std::string>& keys, std::int32_t id);

 private:
  struct Slot {
    std::uint32_t tag;  // high hash bits: most mismatches are rejected without touching the key
    std::int32_t id1;   // id + 1, 0 = empty
  };
  static std::uint64_t hash(std::string_view s);
  std::vector<Slot> slots_;
  std::uint64_t mask_ = 0;
};

struct MergeRule {
  std::int32_t rank = -1;    // -1: no rule for this pair
  std::int32_t merged = -1;  // the token the pair becomes
};

// Open-addressing map from a pair of token ids to its merge rule.
class PairMap {
 public:
  void reserve(std::size_t n);
  // Returns false when the pair already has a rule.
  bool insert(std::int32_t left, std::int32_t right, MergeRule rule);
  MergeRule find(std::int32_t left, std::int32_t right) const {
    const std::uint64_t key = pack(left, right);
    for (std::uint64_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.rule;
      if (s.key == kEmpty) return {};
    }
  }
  std::size_t size() const { return size_; }

 private:
  struct Slot {
    std::uint64_t key;
    MergeRule rule;
  };
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  static std::uint64_t pack(std::int32_t l, std::int32_t r) {
    return (std::uint64_t(std::uint32_t(l)) << 32) | std::uint32_t(r);
  }
  std::uint64_t slot_of(std::uint64_t key) const { return ((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_; }
  std::vector<Slot> slots_;
  std::uint64_t mask_ = 0;
  std::size_t size_ = 0;
};

struct Vocab {
  std::vector<std::string> bytes;  // id -> the token's raw bytes
  TokenMap by_bytes;
  PairMap merges;
  std::array<std::int32_t, 256> byte_token{};  // byte -> its single-byte token, -1 when absent
  bool missing_bytes = false;                  // some byte_token is -1: drop those bytes first
  // id -> BPE of the token's own bytes gives exactly [id], so a pre-token equal to it can skip BPE.
  std::vector<std::uint8_t> whole;

  std::int32_t find(std::string_view token) const { return by_bytes.find(bytes, token); }
  std::int32_t eot = -1;                  // "<|endoftext|>", -1 when absent
  std::vector<std::int32_t> special_ids;  // their bytes are their text, never run through BPE
  std::string vocab_sha256;               // of the files, when loaded from files
  std::string merges_sha256;
};

// Parses both files; throws FormatError naming the file and key or line.
Vocab load_vocab(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
// Builds from lists already in memory, with the same checks; errors name v.where and the index.
Vocab build_vocab(const BpeVocabulary& v);

// Appends the BPE tokens of one pre-token to `out`.
void bpe_encode(const Vocab& vocab, std::string_view piece, std::vector<std::int32_t>& out);
// The same without the whole-token shortcut (used to compute Vocab::whole).
void bpe_merge(const Vocab& vocab, std::string_view piece, std::vector<std::int32_t>& out);

}  // namespace saelab::text::detail
