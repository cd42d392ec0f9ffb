#pragma once
// Element types of stored activation rows and bulk conversions to and from float32.
//
// Activations are computed in float32 and usually stored as 16-bit floats to halve disk and buffer
// size. The conversions here run over whole rows at once: float16 uses the F16C instructions when
// the CPU has them (checked at run time), bfloat16 is a shift that the compiler vectorises. Both
// narrowing conversions round to nearest even, like torch's Half and BFloat16 constructors; NaN
// stays NaN (its payload bits may differ from torch's).
#include <cstddef>
#include <cstdint>
#include <string>

#include "saelab/core/export.hpp"

namespace saelab {

enum class RowDtype : std::uint8_t { Float32, Float16, BFloat16 };

// "float32" | "float16" | "bfloat16"; throws FormatError naming `where` and the allowed values.
SAELAB_API RowDtype row_dtype_from_string(const std::string& name, const std::string& where);
SAELAB_API const char* row_dtype_name(RowDtype t);
inline std::size_t row_dtype_bytes(RowDtype t) {
  return t == RowDtype::Float32 ? 4 : 2;
}

SAELAB_API void f16_to_f32(const std::uint16_t* src, float* dst, std::size_t n);
SAELAB_API void f32_to_f16(const float* src, std::uint16_t* dst, std::size_t n);
SAELAB_API void bf16_to_f32(const std::uint16_t* src, float* dst, std::size_t n);
SAELAB_API void f32_to_bf16(const float* src, std::uint16_t* dst, std::size_t n);

// n elements of type `t` at src -> float32 at dst (a copy for Float32).
SAELAB_API void convert_to_f32(RowDtype t, const void* src, float* dst, std::size_t n);
// n float32 at src -> n elements of type `t` at dst.
SAELAB_API void convert_from_f32(RowDtype t, const float* src, void* dst, std::size_t n);

// True when f16 conversions use the F16C instructions (reported by benchmarks).
SAELAB_API bool f16c_available();

}  // namespace saelab
