#include "saelab/data/row_dtype.hpp"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define SAELAB_HAVE_X86 1
#endif

#include "saelab/core/error.hpp"

namespace saelab {

namespace {

inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f16_to_f32_one(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: man * 2^-24 is exact in float32.
    return float_of(sign | bits_of(float(man) * 5.9604644775390625e-08f));
  }
  if (exp == 31) return float_of(sign | 0x7f800000u | (man << 13));
  return float_of(sign | ((exp + 112u) << 23) | (man << 13));
}

// Round to nearest even. Results below half's normal range go through a float addition whose
// rounding does the work: adding 0.5 aligns the half subnormal ulp (2^-24) with float's last bit.
inline std::uint16_t f32_to_f16_one(float f) {
  std::uint32_t u = bits_of(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u >= 0x47800000u) {  // >= 65536, inf or NaN (65520..65536 round to inf below)
    return std::uint16_t(sign | (u > 0x7f800000u ? 0x7e00u : 0x7c00u));
  }
  if (u < 0x38800000u) {                      // < 2^-14: half subnormal or zero
    const std::uint32_t magic = 0x3f000000u;  // 0.5f
    return std::uint16_t(sign | (bits_of(float_of(u) + float_of(magic)) - magic));
  }
  const std::uint32_t odd = (u >> 13) & 1u;
  u += 0xc8000fffu + odd;  // rebias exponent (-112 << 23, mod 2^32) and add the rounding bias
  return std::uint16_t(sign | (u >> 13));
}

inline std::uint16_t f32_to_bf16_one(float f) {
  const std::uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40u);  // quiet NaN
  return std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#ifdef SAELAB_HAVE_X86
__attribute__((target("avx,f16c"))) void f16_to_f32_f16c(const std::uint16_t* src, float* dst,
                                                         std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = f16_to_f32_one(src[i]);
}

__attribute__((target("avx,f16c"))) void f32_to_f16_f16c(const float* src, std::uint16_t* dst,
                                                         std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i] = f32_to_f16_one(src[i]);
}

bool detect_f16c() {
  __builtin_cpu_init();
  // F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c".
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#else
bool detect_f16c() {
  return false;
}
#endif

const bool kHasF16c = detect_f16c();

}  // namespace

bool f16c_available() {
  return kHasF16c;
}

RowDtype row_dtype_from_string(const std::string& name, const std::string& where) {
  if (name == "float32") return RowDtype::Float32;
  if (name == "float16") return RowDtype::Float16;
  if (name == "bfloat16") return RowDtype::BFloat16;
  throw FormatError(cat(where, ": dtype '", name, "' is not supported; allowed: float32, float16, bfloat16"));
}

const char* row_dtype_name(RowDtype t) {
  switch (t) {
    case RowDtype::Float32:
      return "float32";
    case RowDtype::Float16:
      return "float16";
    case RowDtype::BFloat16:
      return "bfloat16";
  }
  return "?";
}

void f16_to_f32(const std::uint16_t* src, float* dst, std::size_t n) {
#ifdef SAELAB_HAVE_X86
  if (kHasF16c) return f16_to_f32_f16c(src, dst, n);
#endif
  for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32_one(src[i]);
}

void f32_to_f16(const float* src, std::uint16_t* dst, std::size_t n) {
#ifdef SAELAB_HAVE_X86
  if (kHasF16c) return f32_to_f16_f16c(src, dst, n);
#endif
  for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_f16_one(src[i]);
}

void bf16_to_f32(const std::uint16_t* src, float* dst, std::size_t n) {
  // A plain widening shift; the compiler turns this loop into vector unpacks.
  std::uint32_t* out = reinterpret_cast<std::uint32_t*>(dst);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::uint32_t(src[i]) << 16;
}

void f32_to_bf16(const float* src, std::uint16_t* dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16_one(src[i]);
}

void convert_to_f32(RowDtype t, const void* src, float* dst, std::size_t n) {
  switch (t) {
    case RowDtype::Float32:
      std::memcpy(dst, src, n * 4);
      return;
    case RowDtype::Float16:
      f16_to_f32(static_cast<const std::uint16_t*>(src), dst, n);
      return;
    case RowDtype::BFloat16:
      bf16_to_f32(static_cast<const std::uint16_t*>(src), dst, n);
      return;
  }
}

void convert_from_f32(RowDtype t, const float* src, void* dst, std::size_t n) {
  switch (t) {
    case RowDtype::Float32:
      std::memcpy(dst, src, n * 4);
      return;
    case RowDtype::Float16:
      f32_to_f16(src, static_cast<std::uint16_t*>(dst), n);
      return;
    case RowDtype::BFloat16:
      f32_to_bf16(src, static_cast<std::uint16_t*>(dst), n);
      return;
  }
}

}  // namespace saelab
