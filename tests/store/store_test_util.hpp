#pragma once
// Shared helpers of the store tests and the harvest driver: deterministic synthetic "harvests"
// whose every value is a function of (sequence, position, column), so any row read back can be
// checked against a value computed independently of the store.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hdf5_store.hpp"
#include "saelab/core/error.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "support/support.hpp"

namespace saelab::store_test {

// Rows of sequence s: varies between 5 and 15 so shard cuts land inside harvest batches.
inline std::int64_t rows_of_sequence(std::int64_t s) {
  return 5 + (s * 7) % 11;
}

float synth_value(std::int64_t seq, std::int64_t pos, std::int64_t col);
std::int32_t synth_token(std::int64_t seq, std::int64_t pos);

// Every row of sequences [seq_begin, seq_end), in corpus order. activations [n, d] float32.
ActivationRows synth_rows(std::int64_t seq_begin, std::int64_t seq_end, std::int64_t d);
std::int64_t synth_row_count(std::int64_t seq_begin, std::int64_t seq_end);

StoreMeta test_meta(std::int64_t d, const std::string& hook = "blocks.0.hook_resid_pre");
hdf5_store::Hdf5StoreConfig test_config(RowDtype dtype, std::int64_t shard_rows, std::int64_t chunk_rows);

// Harvests sequences [0, nseq) in batches of `batch_seqs` sequences, resuming from what is
// committed, then finishes. Returns the stats finish() reported.
NormStats harvest(const std::filesystem::path& dir, const hdf5_store::Hdf5StoreConfig& cfg, std::int64_t d,
                  std::int64_t nseq, std::int64_t batch_seqs, bool resume);

// Every committed row in store order (reader with shuffle=false).
ActivationRows read_all(const std::filesystem::path& dir);

// Values as the store keeps them: float32 rounded to `dtype` and back, the way torch rounds.
torch::Tensor rounded(const torch::Tensor& x, RowDtype dtype);

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

}  // namespace saelab::store_test
