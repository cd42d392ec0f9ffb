#pragma once
// The tokens a feature scan reads, as chunks of whole sequences.
//
// Every latent's statistics (features/collector.hpp) need, for each evaluated position, its
// activation and the tokens and activations around it. A chunk therefore carries whole sequences
// (or whole runs of a sequence's stored positions): the rows of `x` are the evaluated positions,
// and each sequence maps its positions to rows. Two sources:
//   token_feature_scan  held-out token sequences run through the model (a forward pass per batch);
//   store_feature_scan  the harvested store read in corpus order (no forward pass): its rows carry
//                       their sequence, position and token, and are regrouped into sequences here,
//                       the last sequence of a reader batch carried over to the next chunk.
// Both stop after the first sequence that brings the evaluated rows to `max_tokens`.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"

namespace saelab {

class TokenBatches;

struct SAELAB_API ScanSequence {
  std::int64_t seq = 0;              // global sequence index (corpus order)
  std::int64_t start = 0;            // position of tokens[0]
  std::vector<std::int32_t> tokens;  // token ids from `start` on (-1 where unknown)
  std::vector<std::int64_t> rows;    // row of x for each of those positions, -1 if not evaluated
};

struct SAELAB_API ScanChunk {
  torch::Tensor x;  // [n, d_in] float32, the evaluated positions
  std::vector<ScanSequence> sequences;
  std::vector<std::int32_t> row_sequence;  // [n] index into sequences
  std::vector<std::int32_t> row_offset;    // [n] index into that sequence's tokens

  std::int64_t rows() const { return static_cast<std::int64_t>(row_sequence.size()); }
  // Fills row_sequence/row_offset from the sequences' rows; checks every row is used once.
  void index_rows();
};

class SAELAB_API FeatureScan {
 public:
  virtual ~FeatureScan() = default;
  virtual bool next(ScanChunk& out) = 0;         // false once the scan is complete
  virtual std::int64_t rows_done() const = 0;    // evaluated rows yielded so far
  virtual std::int64_t rows_target() const = 0;  // max_tokens (progress total)
  virtual double forward_seconds() const = 0;    // time spent in the model (0 for stores)
  virtual std::string description() const = 0;   // "1,000,000 tokens in 7,813 sequences of 128 ..."
};

struct SAELAB_API TokenScanOptions {
  std::int64_t max_tokens = 1000000;
  std::int64_t batch_size = 8;  // sequences per forward pass
  bool exclude_bos = true;
  RowFilter rows;  // positions the harvest left out are left out here too
};

SAELAB_API std::unique_ptr<FeatureScan> token_feature_scan(ActivationSource& source, TokenBatches& tokens,
                                                           const std::string& hook,
                                                           const TokenScanOptions& opts);
// `reader` must be opened with shuffle = false; reads at most one epoch.
SAELAB_API std::unique_ptr<FeatureScan> store_feature_scan(ActivationReader& reader, std::int64_t max_tokens);

}  // namespace saelab
