// Bulk float16/bfloat16 conversions against torch's own scalar types (c10::Half, c10::BFloat16),
// an independent implementation: every 16-bit pattern one way, a million floats the other.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/data/row_dtype.hpp"

using namespace saelab;

namespace {

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Converts in calls of `step` elements; step 7 never reaches the 8-wide F16C loop, so it checks the
// portable code path that machines without F16C use.
template <class Src, class Dst, class F>
std::vector<Dst> in_steps(const std::vector<Src>& src, std::size_t step, F convert) {
  std::vector<Dst> out(src.size());
  for (std::size_t i = 0; i < src.size(); i += step)
    convert(src.data() + i, out.data() + i, std::min(step, src.size() - i));
  return out;
}

std::vector<float> test_floats() {
  std::vector<float> v = {
      0.0f,           -0.0f,          1.0f,           -1.0f,         65504.0f,        65519.996f,
      65520.0f,       65536.0f,       1e30f,          -1e30f,        INFINITY,        -INFINITY,
      5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 8.940697e-08f, 6.097555e-05f,   6.1035156e-05f,
      1.0009765625f,  1.00048828125f, 1.00146484375f, 3.0e-39f,      1.17549435e-38f, 3.3895314e38f};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    std::uint32_t u = static_cast<std::uint32_t>(rng());
    float f;
    std::memcpy(&f, &u, 4);
    if (i % 2) f = std::ldexp(float(rng() % 100000) / 1000.0f - 50.0f, int(rng() % 40) - 30);
    v.push_back(f);
  }
  return v;
}

}  // namespace

TEST(RowDtype, Float16ToFloat32MatchesTorchForEveryBitPattern) {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  for (std::size_t step : {std::size_t(65536), std::size_t(7)}) {
    auto got = in_steps<std::uint16_t, float>(all, step, f16_to_f32);
    int mismatches = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const float want = static_cast<float>(c10::Half(all[i], c10::Half::from_bits()));
      const bool same = std::isnan(want) ? std::isnan(got[i]) : bits(want) == bits(got[i]);
      mismatches += !same;
    }
    std::printf("f16->f32 (step %zu, F16C %s): %d of 65536 bit patterns differ from c10::Half\n", step,
                f16c_available() ? "on" : "off", mismatches);
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(RowDtype, Float32ToFloat16RoundsLikeTorch) {
  const auto src = test_floats();
  for (std::size_t step : {src.size(), std::size_t(7)}) {
    auto got = in_steps<float, std::uint16_t>(src, step, f32_to_f16);
    int mismatches = 0;
    for (std::size_t i = 0; i < src.size(); ++i) {
      const c10::Half want(src[i]);
      const bool same =
          std::isnan(src[i]) ? ((got[i] & 0x7c00) == 0x7c00 && (got[i] & 0x3ff) != 0) : want.x == got[i];
      if (!same && mismatches++ < 5)
        ADD_FAILURE() << "f32 " << src[i] << " (0x" << std::hex << bits(src[i]) << "): got 0x" << got[i]
                      << ", torch 0x" << want.x;
    }
    std::printf("f32->f16 (step %zu): %d of %zu values differ from c10::Half\n", step, mismatches,
                src.size());
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(RowDtype, BFloat16BothWaysMatchTorch) {
  const auto src = test_floats();
  auto got = in_steps<float, std::uint16_t>(src, src.size(), f32_to_bf16);
  int mismatches = 0;
  for (std::size_t i = 0; i < src.size(); ++i) {
    const c10::BFloat16 want(src[i]);
    const bool same =
        std::isnan(src[i]) ? ((got[i] & 0x7f80) == 0x7f80 && (got[i] & 0x7f) != 0) : want.x == got[i];
    mismatches += !same;
  }
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  auto wide = in_steps<std::uint16_t, float>(all, all.size(), bf16_to_f32);
  int wide_mismatches = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const float want = static_cast<float>(c10::BFloat16(all[i], c10::BFloat16::from_bits()));
    wide_mismatches += std::isnan(want) ? !std::isnan(wide[i]) : bits(want) != bits(wide[i]);
  }
  std::printf("bf16: f32->bf16 %d of %zu differ, bf16->f32 %d of 65536 differ from c10::BFloat16\n",
              mismatches, src.size(), wide_mismatches);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(wide_mismatches, 0);
}

TEST(RowDtype, NamesRoundTripAndUnknownNamesAreRefused) {
  for (RowDtype t : {RowDtype::Float32, RowDtype::Float16, RowDtype::BFloat16})
    EXPECT_EQ(row_dtype_from_string(row_dtype_name(t), "x"), t);
  try {
    row_dtype_from_string("float8", "store.dtype");
    FAIL() << "float8 accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("store.dtype"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("float32, float16, bfloat16"), std::string::npos) << e.what();
  }
}
