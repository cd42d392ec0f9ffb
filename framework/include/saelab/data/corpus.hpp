#pragma once
// Corpus input: plain text files, directories of them, and JSONL with a configurable text field.
// Documents are tokenized by the source, joined with its EOS token and packed into sequences of
// `context_size` tokens, each starting with BOS when prepend_bos is set (as SAELens does).
// Packing is deterministic: the same corpus and tokenizer always give the same sequences, so a
// harvest can resume by skipping the sequences already committed.
//
// Reading order: `paths` in the order given; a directory contributes its files recursively, sorted
// by relative path (byte order), hidden entries (".name") skipped. With format "auto" a directory
// contributes *.txt, *.text, *.md (text) and *.jsonl, *.ndjson (JSONL) and ignores other files; a
// file named directly is JSONL when it ends in .jsonl/.ndjson and text otherwise. With format
// "text" or "jsonl" every file is read in that format.
// Documents: a text file is one document, taken as bytes (any encoding; at most 256 MiB). A JSONL
// file holds one UTF-8 JSON object per line whose string field `text_field` is the document; blank
// lines are skipped; anything else (not UTF-8, not JSON, not an object, field missing or not a
// string) is a FormatError naming file:line and the field. Empty documents are skipped.
// Stream: doc1 EOS doc2 EOS doc3 ... (no separator when the source has no EOS, eos_token < 0).
// Sequence i = [BOS] + stream[i*(C-1) .. (i+1)*(C-1)) with prepend_bos, else stream[i*C .. (i+1)*C),
// C = context_size; a final partial sequence is dropped. With allow_special_tokens the text of the
// EOS token (source.decode({eos}), "<|endoftext|>" for GPT-2) inside a document is that token.
// Fingerprint: SHA-256 over, for each file in reading order, its name (relative to the directory
// given, or the file name for a file given directly), NUL, its size in decimal, NUL, its bytes.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
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

// One document of a corpus, with where it came from.
struct SAELAB_API CorpusDocument {
  std::string file;       // as named in the fingerprint: relative to the directory given, or the file name
  std::int64_t line = 0;  // a JSONL document's line; 0 for a text file
  std::string text;
};

// The corpus's documents one at a time, in reading order, each kept apart (TokenBatches packs
// them into one stream; probing on per-document labels needs them separate).
class SAELAB_API CorpusDocuments {
 public:
  explicit CorpusDocuments(CorpusConfig config);
  ~CorpusDocuments();
  bool next(CorpusDocument& doc);  // false after the last document
  std::string fingerprint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A document's tokens; with allow_special_tokens the EOS token's text inside it is that token.
SAELAB_API std::vector<std::int32_t> document_tokens(std::string_view text, const ActivationSource& source,
                                                     bool allow_special_tokens);

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
