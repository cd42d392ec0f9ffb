#pragma once
// safetensors: the only format saelab reads weights from (never pickle).
//
// File layout (all little-endian):
//   u64 N                      header length in bytes; capped at 100 MB and at file size - 8
//   N bytes of UTF-8 JSON      {"<name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                                          "data_offsets": [begin, end]}, ...,
//                               "__metadata__": {"<key>": "<string value>", ...}}   (optional)
//   data                       tensors in C order; offsets are relative to the start of the data,
//                              and the tensors cover the data exactly: no gaps, no overlaps, no
//                              trailing bytes. end - begin == prod(shape) * sizeof(dtype).
// Also enforced: keys are unique (at every level), each entry has exactly dtype/shape/data_offsets,
// dims are integers >= 0 (at most 16 of them), BOOL elements are bytes 0 or 1.
// Files are untrusted: every violation above is a FormatError naming the file and the tensor.
// The writer produces the same bytes as Python safetensors 0.4.1 (tests/formats checks this).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::safetensors {

using TensorMap = std::map<std::string, torch::Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SAELAB_API TensorEntry {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // relative to the data section
};

struct SAELAB_API File {
  std::filesystem::path path;
  std::vector<TensorEntry> entries;  // in file order
  Metadata metadata;
  TensorMap tensors;  // CPU tensors in their stored dtype, owning their memory
};

// Reads and validates a whole file. Throws FormatError on any malformation.
SAELAB_API File load(const std::filesystem::path& path);
// Only the header (cheap; for inspection and for checking names before loading).
SAELAB_API File load_header(const std::filesystem::path& path);

// Writes tensors (any device; copied to CPU, made contiguous) atomically: temp file, fsync,
// rename. Names are written in sorted order, as the Python implementation does.
SAELAB_API void save(const std::filesystem::path& path, const TensorMap& tensors,
                     const Metadata& metadata = {});

// "F32" <-> torch::kFloat32 etc. Throws FormatError for a dtype saelab does not support.
SAELAB_API torch::Dtype dtype_from_string(const std::string& s, const std::string& where);
SAELAB_API std::string dtype_to_string(torch::Dtype d);

}  // namespace saelab::safetensors
