#pragma once
// A small deterministic random generator for shuffles that must be reproducible from a seed on any
// machine and with any library version (torch's generators are not promised to be): reader cursors
// store only (seed, epoch, window, offset) and recompute every permutation from them.
//
// splitmix64 seeds xoshiro256**; bounded integers use Lemire's multiply-shift with rejection, so
// every permutation is unbiased.
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace saelab {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Derives an independent stream seed from a base seed and up to three labels (epoch, window, ...).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0,
                                 std::uint64_t c = 0) {
  std::uint64_t s = seed;
  std::uint64_t h = splitmix64(s);
  for (std::uint64_t v : {a, b, c}) {
    s = h ^ (v + 0x632be59bd9b4e019ULL);
    h = splitmix64(s);
  }
  return h;
}

__extension__ typedef unsigned __int128 DetRngU128;

class DetRng {
 public:
  explicit DetRng(std::uint64_t seed) {
    std::uint64_t s = seed;
    for (auto& w : s_) w = splitmix64(s);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), n >= 1.
  std::uint64_t below(std::uint64_t n) {
    DetRngU128 m = static_cast<DetRngU128>(next()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<DetRngU128>(next()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// Fisher-Yates over [first, first + n).
template <class T>
void deterministic_shuffle(T* first, std::uint64_t n, std::uint64_t seed) {
  DetRng rng(seed);
  for (std::uint64_t i = n; i > 1; --i) {
    const std::uint64_t j = rng.below(i);
    std::swap(first[i - 1], first[j]);
  }
}

}  // namespace saelab
