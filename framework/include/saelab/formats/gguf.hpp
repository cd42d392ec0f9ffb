#pragma once
// GGUF: the single-file model format of llama.cpp / ggml (layout as in ggml's gguf.h).
//
// File layout (all little-endian; versions 2 and 3 are read, v1 with its u32 counts and
// byte-swapped big-endian files are refused):
//   u32 magic          the bytes "GGUF"
//   u32 version        2 or 3
//   u64 tensor_count
//   u64 kv_count
//   kv_count x KV      string key, u32 value_type, value
//   tensor_count x TI  string name
//                      u32 n_dims                 1..4 (GGML_MAX_DIMS)
//                      u64 dims[n_dims]           ggml order: dims[0] is the innermost, contiguous one
//                      u32 ggml_type              GgmlType below
//                      u64 offset                 relative to the data section, a multiple of the
//                                                 alignment
//   padding            zero bytes up to a multiple of the alignment: the u32 key general.alignment,
//                      a nonzero power of two, 32 when absent
//   data section       tensor bytes; a tensor occupies [offset, offset + n_bytes) of it
// where
//   string   = u64 length, then that many bytes (UTF-8 by convention; no terminating NUL)
//   value    = by value_type: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one byte, 0 or
//              1), 8 string, 9 array, 10 u64, 11 i64, 12 f64
//   array    = u32 element type, u64 count, then count bare values of that type (no per-element
//              type); an element may itself be an array (nested: type, count, values)
//
// Shapes: ggml lists the innermost dimension first, so the torch (row-major) shape is the reverse:
//   token_embd.weight  ggml [576, 49152]  ->  torch [49152, 576]   (one row of 576 per token)
// Quantized types pack block_size consecutive elements along dims[0] into type_size bytes, so
// dims[0] must be a multiple of block_size and n_bytes = n_elements / block_size * type_size.
// E.g. Q4_1: 32 elements in 20 bytes (f16 d, f16 m, 16 bytes of nibbles); x = d * q + m.
//
// Files are untrusted. Every violation is a FormatError naming the file and, where there is one,
// the key or tensor: bad magic, unsupported version, tensor or kv counts beyond what the file size
// allows, any length or count running past the end of the file (checked before anything is
// allocated), arrays nested deeper than 8, unknown value types, bools other than 0/1, duplicate
// keys or tensor names, n_dims outside 1..4, zero dims, element or byte counts overflowing 63 bits,
// an unknown ggml type id, dims[0] not a multiple of the block size, general.alignment not a u32
// power of two, offsets not multiples of the alignment, tensors extending past the end of the file
// or overlapping each other.
//
// The header is read with bounded, buffered reads; tensor data through a read-only mmap of the file
// that the File owns (copies of a File share it). dequantize() reproduces the Python gguf package's
// gguf.quants.dequantize (0.19.0) bit for bit; tests/formats/test_gguf_*.cpp checks this.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::gguf {

// ggml's numbering (ggml.h). Ids 4, 5, 31-33 and 36-38 belonged to layouts ggml has removed; files
// using them are refused as unknown.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

struct SAELAB_API TypeTraits {
  GgmlType type;
  const char* name;          // "Q4_1"
  std::uint32_t block_size;  // elements per block (1 for F32/F16/BF16/I8/...)
  std::uint32_t type_size;   // bytes per block
};

// The traits of a ggml type id, or nullptr for an id ggml does not define.
SAELAB_API const TypeTraits* type_traits(std::uint32_t id);
// "Q4_1"; "unknown type 99" for an undefined id.
SAELAB_API std::string type_name(GgmlType type);
// Whether dequantize() handles the type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
SAELAB_API bool can_dequantize(GgmlType type);
// That list as text, for error messages.
SAELAB_API std::string dequantizable_types();

enum class ValueType : std::uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
// "u32", "string", ...; "unknown value type 13" for anything else.
SAELAB_API std::string value_type_name(ValueType type);

// One metadata value. Which members hold it depends on `type`; the File's typed getters below are
// the convenient (and checked) way in.
struct SAELAB_API Value {
  ValueType type = ValueType::U8;
  std::uint64_t uint = 0;  // U8, U16, U32, U64; BOOL as 0 or 1
  std::int64_t sint = 0;   // I8, I16, I32, I64
  double real = 0;         // F32, F64 (every f32 converts to a double exactly)
  std::string string;      // STRING
  // ARRAY: `count` elements of `elem_type`, held by exactly one of the three vectors. Numbers and
  // bools stay as stored (count x element size bytes, little-endian) so that a 49152-entry
  // token_type array costs 4 bytes per entry, not a Value each.
  ValueType elem_type = ValueType::U8;
  std::uint64_t count = 0;
  std::vector<std::uint8_t> raw;     // fixed-size elements
  std::vector<std::string> strings;  // STRING elements
  std::vector<Value> arrays;         // ARRAY elements (nested arrays)

  // "u32 30", "string 'llama'", "array of 49152 string", for messages and `saelab info`.
  std::string describe() const;
};

struct SAELAB_API KeyValue {
  std::string key;
  Value value;
};

struct SAELAB_API TensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // ggml order, innermost first: token_embd [576, 49152]
  GgmlType type = GgmlType::F32;
  std::uint64_t offset = 0;  // absolute file offset of the first byte
  std::uint64_t n_bytes = 0;
  std::uint64_t n_elements = 0;
};

// The torch shape of a tensor: its ggml dims reversed ([576, 49152] -> {49152, 576}).
SAELAB_API std::vector<std::int64_t> torch_shape(const TensorInfo& tensor);

class SAELAB_API File {
 public:
  // Opens and validates the header; throws FormatError on any malformation, Error when the file
  // cannot be opened or mapped.
  explicit File(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  std::uint32_t version() const { return version_; }
  std::uint64_t file_size() const { return file_size_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // absolute start of the data section

  const std::vector<KeyValue>& metadata() const { return kvs_; }  // in file order
  const Value* find(const std::string& key) const;                // nullptr when absent
  // Typed getters: FormatError naming the file and the key when it is missing or holds another
  // type. Integer getters accept any integer type whose value fits the result.
  const Value& get(const std::string& key) const;
  std::uint32_t get_u32(const std::string& key) const;
  std::uint64_t get_u64(const std::string& key) const;
  std::int64_t get_i64(const std::string& key) const;
  float get_f32(const std::string& key) const;  // F32 as stored, F64 rounded to float
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<std::int32_t> get_i32_array(const std::string& key) const;  // any integer elements
  std::vector<float> get_f32_array(const std::string& key) const;         // F32 or F64 elements

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find_tensor(const std::string& name) const;        // nullptr when absent
  // FormatError naming the file and the tensor, and listing a few names that do exist.
  const TensorInfo& tensor(const std::string& name) const;
  // The tensor's n_bytes bytes, read-only, valid while this File (or a copy) lives.
  const std::uint8_t* data(const TensorInfo& tensor) const;

 private:
  std::filesystem::path path_;
  std::uint32_t version_ = 0;
  std::uint64_t file_size_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::unordered_map<std::string, std::size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> tensor_index_;
  std::shared_ptr<const std::uint8_t> map_;  // the whole file, unmapped with the last copy
};

// Writes tensor.n_elements floats to out (row-major in the torch shape), computed exactly as
// gguf.quants.dequantize does. Runs over blocks with at::parallel_for. A type outside
// dequantizable_types() is a FormatError naming the tensor and its type.
SAELAB_API void dequantize(const File& file, const TensorInfo& tensor, float* out);
// The named tensor dequantized into a new float32 CPU tensor of shape torch_shape(). FormatError
// when the name is missing (see File::tensor) or the type is not dequantizable.
SAELAB_API torch::Tensor load_f32(const File& file, const std::string& name);

}  // namespace saelab::gguf
