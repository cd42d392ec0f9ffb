#pragma once
// A steering direction read from a file: a NumPy .npy array or one tensor of a safetensors file.
//
// .npy (NumPy format version 1.0, 2.0 or 3.0):
//   bytes 0..5   "\x93NUMPY"
//   byte  6, 7   major, minor version
//   then         header length: uint16 little-endian (v1) or uint32 (v2, v3)
//   then         the header, a Python dict literal padded with spaces and ending in '\n':
//                {'descr': '<f4', 'fortran_order': False, 'shape': (576,), }
//   then         the data, C order, shape's product × itemsize bytes
// Accepted here: descr '<f4', '<f8' or '<f2' (little-endian float32/64/16), fortran_order False,
// shape (d,) or (1, d). The header is untrusted: length, quoting and every key are checked.
//
// safetensors: FILE holding exactly one tensor, or FILE#NAME naming one; shape [d] or [1, d].
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

// Returns [d] float32. `spec` is a path, or for safetensors "path#tensor". Throws FormatError naming
// the file and what is wrong, and UsageError when d differs from `expected_d` (> 0).
SAELAB_API torch::Tensor load_direction(const std::string& spec, std::int64_t expected_d);

// The .npy reader alone: an array of any float dtype above with up to 2 dimensions, as float32.
SAELAB_API torch::Tensor load_npy(const std::filesystem::path& path);

}  // namespace saelab
