#pragma once
// Internal to the safetensors reader/writer: dtype table and header validation.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "saelab/formats/safetensors.hpp"

namespace saelab::safetensors::detail {

constexpr std::size_t kMaxDims = 16;

struct DtypeInfo {
  const char* name;  // "F32"
  torch::Dtype dtype;
  std::size_t size;  // bytes per element
  int write_rank;    // the Python writer puts higher ranks first (I64, F64, F32, I32, BF16, ...)
};

struct Header {
  std::vector<TensorEntry> entries;  // in file order
  Metadata metadata;
};

std::string file_where(const std::filesystem::path& file);
std::string tensor_where(const std::filesystem::path& file, const std::string& name);
std::string allowed_dtypes();
// Throws FormatError "<where>: dtype 'X' is not supported; allowed: ...".
const DtypeInfo& dtype_info(const std::string& name, const std::string& where);
// Throws Error for a torch dtype safetensors cannot hold.
const DtypeInfo& dtype_info(torch::Dtype dtype);

// Validates the JSON text of a header against a data section of data_len bytes.
Header parse_header(const std::filesystem::path& file, const std::string& text, std::uint64_t data_len);

}  // namespace saelab::safetensors::detail
