#pragma once
// Internal to the GGUF reader: facts about metadata value types shared by the parser (gguf.cpp)
// and the typed accessors (gguf_metadata.cpp).
#include <cstdint>
#include <filesystem>
#include <string>

#include "saelab/core/error.hpp"
#include "saelab/formats/gguf.hpp"

namespace saelab::gguf::detail {

// Bytes per element of the fixed-size value types; 0 for STRING and ARRAY.
inline std::uint64_t fixed_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    default:
      return 0;
  }
}

inline bool is_unsigned(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
inline bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

// An i8 as stored (two's complement), widened without going through a (signed) char.
inline std::int64_t sign_extend(std::uint8_t b) {
  return b < 0x80 ? b : static_cast<std::int64_t>(b) - 0x100;
}

inline std::string file_where(const std::filesystem::path& file) {
  return cat("gguf: '", file.string(), "'");
}

}  // namespace saelab::gguf::detail
