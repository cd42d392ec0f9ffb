#pragma once
// Measurements of the hdf5 activation store that other benchmarks (the integrator's harvest
// benchmark) can call with their own figures.
#include <cstdint>
#include <filesystem>

#include "saelab/data/row_dtype.hpp"

namespace saelab::store_bench {

// What writing rows to a store costs, measured by appending synthetic float32 rows (already in
// memory, so nothing but the store is timed): conversion, statistics, HDF5 writes, and per shard
// the close, fsync, SHA-256, rename and manifest update.
struct WriteCost {
  std::int64_t rows = 0;
  double seconds = 0;
  double us_per_row = 0;       // wall clock
  double cpu_us_per_row = 0;   // user + system CPU time
  double bytes_per_row = 0;    // on disk
  double durable_seconds = 0;  // of `seconds`: fsync, SHA-256, rename and manifest, per shard
};
WriteCost measure_write_cost(const std::filesystem::path& dir, std::int64_t d, RowDtype dtype,
                             std::int64_t rows, std::int64_t shard_rows, std::int64_t chunk_rows);

// Overhead of storing, as a percentage of a harvest that produces `harvest_rows_per_s` rows per
// second without a store, when the writer runs on the same thread: cost * rate * 100.
inline double overhead_percent(const WriteCost& c, double harvest_rows_per_s) {
  return c.us_per_row * 1e-6 * harvest_rows_per_s * 100.0;
}

}  // namespace saelab::store_bench
