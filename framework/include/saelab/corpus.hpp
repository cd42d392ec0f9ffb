#pragma once
// Corpus input: plain text files, directories of them, and JSONL with a configurable text field.
// Documents are tokenized by the source, joined with its EOS token and packed into sequences of
// `context_size` tokens, each starting with BOS when prepend_bos is set (as SAELens does).
// Packing is deterministic: the same corpus and tokenizer always give the same sequences, so a
// harvest can resume by skipping the sequences already committed.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/export.hpp"
#include "saelab/interfaces/activation_source.hpp"

namespace saelab {

struct SAELAB_API CorpusConfig {
  std::vector<std::filesystem::path> paths;  // files or directories (recursed, sorted by name)
  std::string format = "auto";               // auto | text | jsonl  (auto: by extension)
  std::string text_field = "text";           // JSONL field holding the document
  std::int64_t context_size = 128;
  bool prepend_bos = true;
  bool allow_special_tokens = false;  // a literal "<|endoftext|>" in text is a special token
};

class SAELAB_API TokenBatches {
 public:
  TokenBatches(CorpusConfig config, const ActivationSource& source);
  ~TokenBatches();
  // Up to n sequences [m, context_size] int64 (m < n only at the end; m == 0 when exhausted).
  torch::Tensor next(std::int64_t n);
  std::int64_t sequences_emitted() const;
  // Skips sequences without returning them (resuming a harvest).
  void skip(std::int64_t sequences);
  // SHA-256 over the corpus files' names and contents, in reading order.
  std::string fingerprint() const;
  const CorpusConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace saelab
