// Dequantization of GGUF tensors to float32 (block layouts in ggml-common.h).
//
// Every kernel mirrors the arithmetic of gguf.quants (Python gguf 0.19.0) so the results agree bit
// for bit: f16 scales are widened to f32 exactly, and each product and sum is one float32
// operation in the order numpy evaluates it (`d * q + m` is the rounded product, then the rounded
// sum; K-quant sub-block scales are the rounded product d * sc before they meet q). In these
// formats every product happens to be exact in float32 (an f16 has 11 significant bits, the
// integer factors at most 8, 6 and 6), so only the final add or subtract of a min rounds; that
// is why neither the multiplication order nor FMA contraction changes a result, while applying
// the min in another way (or order) would. std::fma is still not used, and saelab compiles as ISO
// C++17 (CMAKE_CXX_EXTENSIONS OFF), where GCC does not contract across operations anyway.
#include "formats/gguf_dequant.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <ATen/Parallel.h>

#include "saelab/core/error.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "saelab's GGUF code assumes a little-endian host"
#endif

namespace saelab::gguf {
namespace detail {
namespace {

constexpr int kQK = 32;    // elements per block of the 32-element types
constexpr int kQKK = 256;  // elements per K-quant super-block

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

std::uint32_t load_u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}

float from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// A stored f16 scale, widened to float as numpy's `.view(np.float16).astype(np.float32)` does.
float load_half(const std::uint8_t* p) {
  return from_bits(half_to_float_bits(load_u16(p)));
}

// Bit copies: numpy's F32 dequantization is a view, so NaN payloads pass through unchanged.
void f32_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

void f16_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t bits = half_to_float_bits(load_u16(src + 2 * i));
    std::memcpy(dst + i, &bits, sizeof bits);
  }
}

// bfloat16 is the top half of a float32: `(int16 as int32) << 16` in gguf.quants.BF16.
void bf16_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t bits = std::uint32_t{load_u16(src + 2 * i)} << 16;
    std::memcpy(dst + i, &bits, sizeof bits);
  }
}

// Q8_0, 34 bytes: f16 d, int8 q[32]; x = q * d.
void q8_0_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 34, dst += kQK) {
    const float d = load_half(src);
    for (int i = 0; i < kQK; ++i) dst[i] = static_cast<float>(static_cast<std::int8_t>(src[2 + i])) * d;
  }
}

// Q4_0, 18 bytes: f16 d, 16 bytes whose low nibbles are elements 0-15 and high nibbles 16-31;
// x = d * (q - 8).
void q4_0_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 18, dst += kQK) {
    const float d = load_half(src);
    const std::uint8_t* qs = src + 2;
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
      dst[j + kQK / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
    }
  }
}

// Q4_1, 20 bytes: f16 d, f16 m, nibbles as in Q4_0; x = (d * q) + m.
void q4_1_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 20, dst += kQK) {
    const float d = load_half(src);
    const float m = load_half(src + 2);
    const std::uint8_t* qs = src + 4;
    for (int j = 0; j < kQK / 2; ++j) {
      const float lo = d * static_cast<float>(qs[j] & 0x0F);
      const float hi = d * static_cast<float>(qs[j] >> 4);
      dst[j] = lo + m;
      dst[j + kQK / 2] = hi + m;
    }
  }
}

// The 5-bit value of element j of a Q5_0/Q5_1 block: its nibble, and bit j of qh as bit 4.
int q5_value(const std::uint8_t* qs, std::uint32_t qh, int j) {
  const int nibble = j < kQK / 2 ? (qs[j] & 0x0F) : (qs[j - kQK / 2] >> 4);
  return nibble | static_cast<int>(((qh >> j) & 1u) << 4);
}

// Q5_0, 22 bytes: f16 d, u32 qh (high bits), 16 bytes of nibbles; x = d * (q - 16).
void q5_0_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 22, dst += kQK) {
    const float d = load_half(src);
    const std::uint32_t qh = load_u32(src + 2);
    for (int j = 0; j < kQK; ++j) dst[j] = d * static_cast<float>(q5_value(src + 6, qh, j) - 16);
  }
}

// Q5_1, 24 bytes: f16 d, f16 m, u32 qh, 16 bytes of nibbles; x = (d * q) + m.
void q5_1_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 24, dst += kQK) {
    const float d = load_half(src);
    const float m = load_half(src + 2);
    const std::uint32_t qh = load_u32(src + 4);
    for (int j = 0; j < kQK; ++j) {
      const float dq = d * static_cast<float>(q5_value(src + 8, qh, j));
      dst[j] = dq + m;
    }
  }
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K super-block, unpacked from 12 bytes as
// gguf.quants.Q4_K.get_scale_min does:
//   bytes 0-3  scale j (low 6 bits), top 2 bits = bits 4-5 of scale j+4
//   bytes 4-7  min j (low 6 bits),   top 2 bits = bits 4-5 of min j+4
//   bytes 8-11 low nibble = bits 0-3 of scale j+4, high nibble = bits 0-3 of min j+4
struct KScales {
  float scale[8];  // d * sc, rounded to float
  float min[8];    // dmin * m, rounded to float
};

KScales k_scales(float d, float dmin, const std::uint8_t* s) {
  KScales k{};
  for (int j = 0; j < 4; ++j) {
    const int sc_lo = s[j] & 0x3F, m_lo = s[4 + j] & 0x3F;
    const int sc_hi = (s[8 + j] & 0x0F) | ((s[j] >> 2) & 0x30);
    const int m_hi = (s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30);
    k.scale[j] = d * static_cast<float>(sc_lo);
    k.scale[4 + j] = d * static_cast<float>(sc_hi);
    k.min[j] = dmin * static_cast<float>(m_lo);
    k.min[4 + j] = dmin * static_cast<float>(m_hi);
  }
  return k;
}

// Q4_K, 144 bytes: f16 d, f16 dmin, 12 bytes of scales, 128 bytes of nibbles. Sub-block j (32
// elements) takes the low (j even) or high (j odd) nibbles of bytes 32*(j/2) .. +31;
// x = (scale_j * q) - min_j.
void q4_k_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 144, dst += kQKK) {
    const KScales k = k_scales(load_half(src), load_half(src + 2), src + 4);
    const std::uint8_t* qs = src + 16;
    for (int j = 0; j < 8; ++j) {
      const std::uint8_t* q = qs + std::ptrdiff_t{32} * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const float dq = k.scale[j] * static_cast<float>((q[l] >> shift) & 0x0F);
        dst[32 * j + l] = dq - k.min[j];
      }
    }
  }
}

// Q5_K, 176 bytes: f16 d, f16 dmin, 12 bytes of scales, 32 bytes qh, 128 bytes of nibbles. As
// Q4_K, with bit j of qh[l] as bit 4 of element l of sub-block j.
void q5_k_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 176, dst += kQKK) {
    const KScales k = k_scales(load_half(src), load_half(src + 2), src + 4);
    const std::uint8_t* qh = src + 16;
    const std::uint8_t* qs = src + 48;
    for (int j = 0; j < 8; ++j) {
      const std::uint8_t* q = qs + std::ptrdiff_t{32} * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int value = ((q[l] >> shift) & 0x0F) | (((qh[l] >> j) & 1) << 4);
        const float dq = k.scale[j] * static_cast<float>(value);
        dst[32 * j + l] = dq - k.min[j];
      }
    }
  }
}

// Q6_K, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d. Element e:
// half h = e / 128, low nibble from ql[64h + e % 64] (high nibble when e % 128 >= 64), high bits
// from qh[32h + e % 32] >> 2 * ((e % 128) / 32); x = (d * scale[e / 16]) * (q - 32).
void q6_k_kernel(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n; ++b, src += 210, dst += kQKK) {
    const std::uint8_t* ql = src;
    const std::uint8_t* qh = src + 128;
    const std::uint8_t* sc = src + 192;
    const float d = load_half(src + 208);
    float scale[16];
    for (int i = 0; i < 16; ++i) scale[i] = d * static_cast<float>(static_cast<std::int8_t>(sc[i]));
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128, r = e % 128;
      const int lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
      const int hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
      dst[e] = scale[e / 16] * static_cast<float>((lo | (hi << 4)) - 32);
    }
  }
}

}  // namespace

std::uint32_t half_to_float_bits(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
  const std::uint32_t exp = h & 0x7C00u;
  std::uint32_t mant = h & 0x03FFu;
  if (exp == 0x7C00u) return sign | 0x7F800000u | (mant << 13);  // inf, NaN (payload kept)
  if (exp != 0) return sign | ((std::uint32_t{h & 0x7FFFu} + 0x1C000u) << 13);
  if (mant == 0) return sign;  // signed zero
  // Subnormal: shift the mantissa up until its leading one reaches the implicit-bit position.
  std::uint32_t e = 0;
  mant <<= 1;
  while ((mant & 0x0400u) == 0) {
    mant <<= 1;
    ++e;
  }
  return sign | ((127 - 15 - e) << 23) | ((mant & 0x03FFu) << 13);
}

BlockKernel block_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return f32_kernel;
    case GgmlType::F16:
      return f16_kernel;
    case GgmlType::BF16:
      return bf16_kernel;
    case GgmlType::Q8_0:
      return q8_0_kernel;
    case GgmlType::Q4_0:
      return q4_0_kernel;
    case GgmlType::Q4_1:
      return q4_1_kernel;
    case GgmlType::Q5_0:
      return q5_0_kernel;
    case GgmlType::Q5_1:
      return q5_1_kernel;
    case GgmlType::Q4_K:
      return q4_k_kernel;
    case GgmlType::Q5_K:
      return q5_k_kernel;
    case GgmlType::Q6_K:
      return q6_k_kernel;
    default:
      return nullptr;
  }
}

}  // namespace detail

bool can_dequantize(GgmlType type) {
  return detail::block_kernel(type) != nullptr;
}

std::string dequantizable_types() {
  return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";
}

namespace {
void check_dequantizable(const File& file, const TensorInfo& t) {
  SAELAB_CHECK(can_dequantize(t.type), FormatError, "gguf: '", file.path().string(), "': tensor '", t.name,
               "' has type ", type_name(t.type),
               ", which saelab cannot dequantize; supported types: ", dequantizable_types());
}
}  // namespace

void dequantize(const File& file, const TensorInfo& t, float* out) {
  check_dequantizable(file, t);
  const TypeTraits* traits = type_traits(static_cast<std::uint32_t>(t.type));
  // The File validated these when it parsed the header; a TensorInfo built by hand may not be.
  SAELAB_CHECK(traits && t.n_elements % traits->block_size == 0 &&
                   t.n_bytes == t.n_elements / traits->block_size * traits->type_size,
               Error, "gguf: '", file.path().string(), "': tensor '", t.name, "': ", t.n_elements,
               " elements of ", type_name(t.type), " do not take ", t.n_bytes, " bytes");
  const std::uint8_t* src = file.data(t);  // checks the byte range against the file
  const detail::BlockKernel kernel = detail::block_kernel(t.type);
  const auto n_blocks = static_cast<std::int64_t>(t.n_elements / traits->block_size);
  const std::int64_t block = traits->block_size, bytes = traits->type_size;
  // About 16K elements per task: large enough to amortise scheduling, small enough to balance.
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / block);
  at::parallel_for(0, n_blocks, grain, [&](std::int64_t begin, std::int64_t end) {
    kernel(src + begin * bytes, out + begin * block, end - begin);
  });
}

torch::Tensor load_f32(const File& file, const std::string& name) {
  const TensorInfo& t = file.tensor(name);
  check_dequantizable(file, t);  // before allocating
  torch::Tensor out = torch::empty(torch_shape(t), torch::kFloat32);
  dequantize(file, t, out.data_ptr<float>());
  return out;
}

}  // namespace saelab::gguf
