#pragma once
// Byte-level BPE tokenizers: GPT-2's (token-for-token identical to Hugging Face GPT2TokenizerFast
// and tiktoken's "gpt2" encoding, for any input bytes) and those built from an in-memory
// vocabulary, such as a GGUF file's (Llama-family models with GPT-2-style BPE, e.g. SmolLM2).
//
// Files (both as OpenAI published them; data/gpt2-tokenizer/ after scripts/fetch-data.sh):
//   encoder.json  One JSON object {"token": id, ...}. Each key is a token's bytes written in GPT-2's
//                 byte-to-unicode alphabet (printable Latin-1 bytes stand for themselves, the other
//                 68 bytes for U+0100..U+0143). Ids are dense: 0..N-1, each used once. All 256
//                 single bytes must be present, and "<|endoftext|>" (the special end-of-text token,
//                 GPT-2's only special token).
//   vocab.bpe     The merge rules, best first: an optional first line "#version: ...", then one
//                 rule per line, "left right" (one space, both in the same alphabet, left+right a
//                 token of encoder.json). A rule's rank is its index among the rule lines.
// In memory (BpeVocabulary): the same two lists, already split: tokens[id] in the same alphabet
// (as GGUF `tokenizer.ggml.tokens` stores them), merges[rank] "left right" (GGUF
// `tokenizer.ggml.merges`). Special tokens are named by id; their text is taken as it is, not
// through the alphabet, as llama.cpp and Hugging Face do for control and added tokens.
//
// Encoding:
//  1. With allow_special, each occurrence of a special token's text becomes that token (the
//     longest one when several start at the same place, as HF's leftmost-longest matching does),
//     and the text between is encoded on its own; without it that text is ordinary text.
//  2. The input is split into maximal well-formed UTF-8 runs and the bytes between them. Each run is
//     pre-tokenized. Gpt2 uses GPT-2's regex
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     (\s = Unicode White_Space). SmolLM (HF: Sequence([Digits(individual_digits=True),
//     ByteLevel(use_regex=True)]); llama.cpp: "smollm") first makes every number code point
//     (\p{N}: Nd, Nl, No) a pre-token of its own, then splits each stretch between them with that
//     regex alone, the stretch's end standing for the end of the input (so "  1" is "  ", "1").
//     Each byte that is not part of well-formed UTF-8 is a pre-token of its own and so becomes its
//     single-byte token. Hugging Face and tiktoken accept only valid text (Python str), so this is
//     saelab's definition for such bytes; with all 256 bytes in the vocabulary it makes
//     encode/decode an exact round trip for every byte string and agrees with them on every
//     valid one.
//  3. Each pre-token's bytes start as single-byte tokens; the adjacent pair with the lowest rank is
//     merged (leftmost first on ties) until no pair has a rule, as HF's BPE model does.
//     A byte the vocabulary has no single-byte token for (possible only in memory: SmolLM2 lacks
//     most C0 control bytes) is dropped first, as HF's BPE without unk token or byte fallback
//     skips it, so its neighbours may still merge ("a\x04b" -> "ab"). decode(encode(s)) then
//     lacks those bytes.
// Linear-time apart from a log factor: a long pre-token (1 MB of one letter) is merged with a heap
// over a linked list, never by rescanning.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "saelab/core/export.hpp"

namespace saelab::text {

enum class PreTokenizerKind {
  Gpt2,    // GPT-2's regex ("gpt2")
  SmolLM,  // each number code point alone, then GPT-2's regex on the stretches between ("smollm")
};

// "gpt2" -> Gpt2, "smollm" -> SmolLM (GGUF `tokenizer.ggml.pre` names). Anything else throws
// FormatError naming the value, `where` (e.g. "model.gguf: tokenizer.ggml.pre") and the names known.
SAELAB_API PreTokenizerKind parse_pretokenizer(std::string_view name, std::string_view where);
SAELAB_API std::string_view pretokenizer_name(PreTokenizerKind kind);

struct BpeVocabulary {
  std::vector<std::string> tokens;        // id -> text in GPT-2's byte-to-unicode alphabet
  std::vector<std::string> merges;        // "left right", best first
  std::vector<std::int32_t> special_ids;  // matched literally before BPE (GGUF token_type 3)
  PreTokenizerKind pretokenizer = PreTokenizerKind::Gpt2;
  std::string where;     // names the source in errors: "model.gguf: tokenizer.ggml"
  std::string identity;  // what identifies this vocabulary (a file's SHA-256); must not be empty
};

class SAELAB_API BpeTokenizer {
 public:
  // GPT-2's two files; the one special token is "<|endoftext|>". Throws FormatError naming the
  // file and the line (vocab.bpe) or key (encoder.json) at fault.
  static BpeTokenizer from_files(const std::filesystem::path& vocab_json,
                                 const std::filesystem::path& merges_txt);
  // Checks what from_files checks (dense ids, unique tokens, every merge's parts and result are
  // tokens, bounded sizes; single bytes may be missing, see Encoding 3) plus the special ids; throws
  // FormatError naming v.where and the token, merge or special index at fault.
  static BpeTokenizer from_vocabulary(const BpeVocabulary& v);

  // Thread-safe: a BpeTokenizer is immutable once built.
  std::vector<std::int32_t> encode(std::string_view text, bool allow_special = false) const;
  // Throws Error for an id outside [0, vocab_size()).
  std::string decode(const std::vector<std::int32_t>& ids) const;
  std::string token_bytes(std::int32_t id) const;
  // The token "<|endoftext|>": 50256 for GPT-2; -1 for an in-memory vocabulary without one.
  std::int32_t eot() const;
  std::int64_t vocab_size() const;  // 50257 for GPT-2
  const std::vector<std::int32_t>& special_ids() const;
  PreTokenizerKind pretokenizer() const;
  // From files: SHA-256 of "gpt2-bpe\n<sha256(encoder.json)>\n<sha256(vocab.bpe)>\n".
  // In memory: SHA-256 of "bpe-vocabulary\n<pretokenizer_name>\n<identity>\n".
  std::string sha256() const;

 private:
  struct Impl;
  explicit BpeTokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace saelab::text
