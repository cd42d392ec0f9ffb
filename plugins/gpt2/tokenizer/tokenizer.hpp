#pragma once
// GPT-2's byte-level BPE tokenizer, token-for-token identical to Hugging Face GPT2TokenizerFast and
// tiktoken's "gpt2" encoding, for any input bytes.
//
// Files (both as OpenAI published them; data/gpt2-tokenizer/ after scripts/fetch-data.sh):
//   encoder.json  One JSON object {"token": id, ...}. Each key is a token's bytes written in GPT-2's
//                 byte-to-unicode alphabet (printable Latin-1 bytes stand for themselves, the other
//                 68 bytes for U+0100..U+0143). Ids are dense: 0..N-1, each used once. All 256
//                 single bytes must be present, and "<|endoftext|>" (the special end-of-text token).
//   vocab.bpe     The merge rules, best first: an optional first line "#version: ...", then one
//                 rule per line, "left right" (one space, both in the same alphabet, left+right a
//                 token of encoder.json). A rule's rank is its index among the rule lines.
//
// Encoding:
//  1. With allow_special, each literal "<|endoftext|>" becomes eot() and the text between is
//     encoded on its own; without it the literal is ordinary text.
//  2. The input is split into maximal well-formed UTF-8 runs and the bytes between them. Each run is
//     pre-tokenized with GPT-2's regex
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     (\s = Unicode White_Space). Each byte that is not part of well-formed UTF-8 is a pre-token
//     of its own and so becomes its single-byte token. Hugging Face and tiktoken accept only valid
//     text (Python str), so this is saelab's definition for such bytes; it makes encode/decode an
//     exact round trip for every byte string and agrees with them on every valid one.
//  3. Each pre-token's bytes start as single-byte tokens; the adjacent pair with the lowest rank is
//     merged (leftmost first on ties) until no pair has a rule, as HF's BPE model does.
// Linear-time apart from a log factor: a long pre-token (1 MB of one letter) is merged with a heap
// over a linked list, never by rescanning.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace saelab::gpt2 {

class Tokenizer {
 public:
  // Throws FormatError naming the file and the line (vocab.bpe) or key (encoder.json) at fault.
  static Tokenizer from_files(const std::filesystem::path& vocab_json,
                              const std::filesystem::path& merges_txt);

  // Thread-safe: a Tokenizer is immutable once built.
  std::vector<std::int32_t> encode(std::string_view text, bool allow_special = false) const;
  // Throws Error for an id outside [0, vocab_size()).
  std::string decode(const std::vector<std::int32_t>& ids) const;
  std::string token_bytes(std::int32_t id) const;
  std::int32_t eot() const;         // "<|endoftext|>": 50256 for GPT-2
  std::int64_t vocab_size() const;  // 50257 for GPT-2
  // Identity of both files: SHA-256 of "gpt2-bpe\n<sha256(encoder.json)>\n<sha256(vocab.bpe)>\n".
  std::string sha256() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace saelab::gpt2
