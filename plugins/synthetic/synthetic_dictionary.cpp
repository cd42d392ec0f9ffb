#include "synthetic_dictionary.hpp"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "saelab/core/error.hpp"

namespace saelab::synthetic {

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

namespace {
// A tiny counter-based generator: the n-th draw of a row is mix64(key + n·golden). Independent of
// any library's RNG, so rows are identical across LibTorch versions and platforms.
class RowRng {
 public:
  explicit RowRng(std::uint64_t key) : state_(mix64(key)) {}
  double uniform() {  // in (0, 1)
    state_ += 0x9e3779b97f4a7c15ULL;
    return (double(mix64(state_) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }

 private:
  std::uint64_t state_;
};
}  // namespace

Dictionary::Dictionary(DictionaryConfig config) : config_(std::move(config)) {
  SAELAB_CHECK(config_.d_in > 0 && config_.n_features > 0, ConfigError,
               "synthetic: d_in and n_features must be > 0, got ", config_.d_in, " and ", config_.n_features);
  SAELAB_CHECK(config_.p_active > 0 && config_.p_active < 1, ConfigError,
               "synthetic: p_active must be in (0, 1), got ", config_.p_active);
  SAELAB_CHECK(config_.magnitude == "uniform" || config_.magnitude == "exponential", ConfigError,
               "synthetic: magnitude '", config_.magnitude, "' is not one of uniform, exponential");
  // Gaussian vectors normalised are uniform on the sphere.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(mix64(config_.seed));
  torch::Tensor f = at::normal(0.0, 1.0, {config_.n_features, config_.d_in}, gen);
  features_ = (f / f.norm(2, {1}, /*keepdim=*/true)).to(torch::kFloat32).contiguous();
}

Dictionary::Code Dictionary::code(std::uint64_t key) const {
  Code c;
  RowRng rng(key ^ mix64(config_.seed + 1));
  // Geometric skipping visits only the active features: gaps between successes of independent
  // Bernoulli(p) trials are Geometric(p), which keeps a row O(active) instead of O(n_features).
  const double log_q = std::log1p(-config_.p_active);
  std::int64_t i = -1;
  while (true) {
    const double gap = std::floor(std::log(rng.uniform()) / log_q);
    if (gap >= double(config_.n_features - i - 1)) break;
    i += 1 + std::int64_t(gap);
    const double u = rng.uniform();
    const double m = config_.magnitude == "uniform" ? 2.0 * config_.magnitude_mean * u
                                                    : -config_.magnitude_mean * std::log(u);
    c.feature.push_back(i);
    c.coefficient.push_back(float(m));
  }
  return c;
}

torch::Tensor Dictionary::rows(const std::vector<std::uint64_t>& keys) const {
  const std::int64_t d = config_.d_in;
  torch::Tensor out = torch::zeros({std::int64_t(keys.size()), d}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  const float* f = features_.data_ptr<float>();
  for (std::size_t r = 0; r < keys.size(); ++r) {
    const Code c = code(keys[r]);
    float* row = dst + std::int64_t(r) * d;
    for (std::size_t j = 0; j < c.feature.size(); ++j) {
      const float* fj = f + c.feature[j] * d;
      for (std::int64_t k = 0; k < d; ++k) row[k] += c.coefficient[j] * fj[k];
    }
  }
  return out;
}

std::vector<std::uint64_t> prefix_keys(const torch::Tensor& tokens, std::uint64_t seed) {
  SAELAB_CHECK(tokens.dim() == 2, Error, "synthetic: tokens must be [batch, seq], got ", tokens.sizes());
  torch::Tensor t = tokens.to(torch::kCPU, torch::kInt64).contiguous();
  const std::int64_t batch = t.size(0), seq = t.size(1);
  const std::int64_t* p = t.data_ptr<std::int64_t>();
  std::vector<std::uint64_t> keys(std::size_t(batch * seq));
  for (std::int64_t b = 0; b < batch; ++b) {
    std::uint64_t h = mix64(seed);
    for (std::int64_t s = 0; s < seq; ++s) {
      h = mix64(h ^ mix64(std::uint64_t(p[b * seq + s]) + (std::uint64_t(s) << 32)));
      keys[std::size_t(b * seq + s)] = h;
    }
  }
  return keys;
}

}  // namespace saelab::synthetic
