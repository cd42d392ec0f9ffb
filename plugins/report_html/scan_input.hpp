#pragma once
// Where the report's activations come from, as a replayable stream of batches.
//
// The report scans its tokens twice: once for every latent's firing statistics (which pick the
// latents to show and fix their histogram ranges), then again for the chosen latents' examples. A
// ScanInput yields the same batches both times: from token sequences run through the model (the
// hook activations are kept in memory up to a budget, else recomputed from the stored tokens), or
// from an activation store (the reader's cursor is restored). The token ids seen are kept, so any
// example can be shown in its context.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

#include "saelab/data/corpus.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"

namespace saelab::report {

struct ScanBatch {
  torch::Tensor x;        // [T, d] raw activations
  torch::Tensor seq;      // [T] int64 sequence id
  torch::Tensor pos;      // [T] int64 position in the sequence
  torch::Tensor include;  // [T] bool: counted in statistics (false for BOS positions)
  // > 0 when the rows are whole sequences in order (row = b * seq_len + pos), so the activations
  // around a row are in the same batch; 0 for shuffled stored rows.
  std::int64_t seq_len = 0;
};

// Token ids by (sequence, position); -1 where the scan never saw the position.
class TokenTable {
 public:
  void set(std::int64_t seq, std::int64_t pos, std::int32_t token);
  std::int32_t get(std::int64_t seq, std::int64_t pos) const;
  std::int64_t length(std::int64_t seq) const;  // 1 + last known position (0 if unknown)
  std::int64_t sequences() const { return static_cast<std::int64_t>(seqs_.size()); }

 private:
  std::unordered_map<std::int64_t, std::vector<std::int32_t>> seqs_;
};

class ScanInput {
 public:
  virtual ~ScanInput() = default;
  virtual bool next(ScanBatch& out) = 0;  // false once the scan is complete
  virtual void rewind() = 0;              // the next calls yield the same batches again
  virtual const TokenTable& tokens() const = 0;
  virtual std::int64_t rows_scanned() const = 0;  // rows yielded in the first pass
  virtual std::string description() const = 0;    // "8 192 tokens in 64 sequences of 128"
};

struct TokenScanOptions {
  std::int64_t batches = 16;
  std::int64_t batch_size = 8;
  bool exclude_bos = true;
  RowFilter rows;                                    // positions the harvest left out are left out here too
  std::int64_t cache_bytes = std::int64_t(1) << 30;  // activations kept between the two passes
};

std::unique_ptr<ScanInput> token_scan(ActivationSource& source, TokenBatches& tokens, const std::string& hook,
                                      const TokenScanOptions& opts);
// Up to `batches` reader batches, never more than one epoch.
std::unique_ptr<ScanInput> reader_scan(ActivationReader& reader, std::int64_t batches);

}  // namespace saelab::report
