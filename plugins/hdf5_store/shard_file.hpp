#pragma once
// One HDF5 shard file (layout in store_format.hpp): writing it under a temporary name, and opening
// a committed one with every check a reader needs before trusting it.
#include <cstdint>
#include <filesystem>
#include <string>

#include "h5_util.hpp"
#include "saelab/data/row_dtype.hpp"
#include "store_format.hpp"

namespace saelab::hdf5_store {

class ShardWriter {
 public:
  // Starts the file for `path` in memory with empty, extendible datasets and the identity
  // attributes; nothing exists on disk until close().
  ShardWriter(const std::filesystem::path& path, const StoreMeta& meta, const Layout& layout, RowDtype dtype,
              std::int64_t shard_index);
  // Appends n rows: act [n, d] in the on-disk dtype, provenance [n].
  void write(const void* act, const std::int32_t* tokens, const std::int64_t* sequence,
             const std::int32_t* position, std::int64_t n);
  std::int64_t rows() const { return rows_; }
  // What close() wrote, hashed from memory (no read-back).
  struct Written {
    std::uint64_t bytes = 0;
    std::string sha256;
  };
  // Records rows and the sequence range, then writes the in-memory file to `path` and fsyncs it.
  // A write error (a full disk) throws Error and leaves no partial file.
  Written close(std::int64_t first_sequence, std::int64_t end_sequence);
  // Closes ignoring errors, after a failure; the caller deletes the file.
  void abandon();

 private:
  void append(h5::Handle& ds, hid_t mem_type, int rank, const void* data, std::int64_t n);
  std::filesystem::path path_;
  std::int64_t d_;
  std::int64_t rows_ = 0;
  h5::Handle act_type_;
  h5::Handle file_, act_, tok_, seq_, pos_;
};

class ShardReader {
 public:
  // Opens a committed shard and checks it against its manifest entry and the store's identity:
  // file size, HDF5 signature, format attributes, every StoreMeta field, dataset shapes and types.
  // Throws FormatError naming the file and what is wrong.
  ShardReader(const std::filesystem::path& path, const ShardEntry& entry, const StoreMeta& meta,
              RowDtype dtype);
  // Reads rows [row0, row0 + n): act [n, d] on-disk dtype, provenance [n] (any may be null).
  // A chunk failing its Fletcher32 checksum throws FormatError naming the shard and the rows.
  void read(std::int64_t row0, std::int64_t n, void* act, std::int32_t* tokens, std::int64_t* sequence,
            std::int32_t* position);
  // Reads every chunk; "" if all pass, else what failed (first bad chunk).
  std::string verify_chunks(std::int64_t chunk_rows);
  const std::filesystem::path& path() const { return path_; }

 private:
  void check_attributes(const ShardEntry& entry, const StoreMeta& meta);
  h5::Handle open_dataset(const char* name, std::int64_t cols, H5T_class_t cls, std::size_t size);
  void read_range(hid_t ds, hid_t mem_type, int rank, std::int64_t row0, std::int64_t n, void* dst,
                  const char* name);
  std::filesystem::path path_;
  std::string where_;
  std::int64_t rows_;
  std::int64_t d_;
  RowDtype dtype_;
  h5::Handle act_type_;
  h5::Handle file_, act_, tok_, seq_, pos_;
};

}  // namespace saelab::hdf5_store
