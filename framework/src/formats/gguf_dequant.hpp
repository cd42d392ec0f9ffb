#pragma once
// Internal to the GGUF reader: the per-type block kernels behind gguf::dequantize().
#include <cstdint>

#include "saelab/formats/gguf.hpp"

namespace saelab::gguf::detail {

// Dequantizes n_blocks consecutive blocks starting at src into n_blocks * block_size floats.
using BlockKernel = void (*)(const std::uint8_t* src, float* dst, std::int64_t n_blocks);

// The kernel for a type, or nullptr when saelab does not dequantize it.
BlockKernel block_kernel(GgmlType type);

// IEEE half -> float bits exactly as numpy's npy_halfbits_to_floatbits (what `.astype(np.float32)`
// does): subnormals normalised, inf kept, NaN payloads shifted up unchanged (signalling NaNs stay
// signalling, unlike x86's vcvtph2ps which quiets them).
std::uint32_t half_to_float_bits(std::uint16_t h);

}  // namespace saelab::gguf::detail
