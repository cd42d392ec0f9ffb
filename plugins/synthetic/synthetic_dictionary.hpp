#pragma once
// A planted sparse dictionary: the ground truth the SAE trainer is tested against.
//
// There are n_features true features f_i, unit vectors in R^{d_in} drawn uniformly on the sphere
// from `seed` (for 1024 features in 256 dimensions, pairwise cosines stay below ~0.35). Every
// activation row is a sparse non-negative combination
//     x = Σ_i c_i f_i,   c_i = 0 with probability 1 − p_active, else c_i ~ magnitude
// where the magnitude is uniform on (0, 2·mean) or exponential with that mean. An SAE that learns
// the data well has a decoder row close to each f_i, which is what the recovery test measures.
//
// Rows are a pure function of a 64-bit key (the activation source derives keys from the token
// prefix), so the same tokens always give the same activations, on any machine.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace saelab::synthetic {

struct DictionaryConfig {
  std::int64_t d_in = 256;
  std::int64_t n_features = 1024;
  double p_active = 0.004;            // each feature's firing probability per row
  std::string magnitude = "uniform";  // uniform | exponential
  double magnitude_mean = 1.0;
  std::uint64_t seed = 0;
};

class Dictionary {
 public:
  explicit Dictionary(DictionaryConfig config);

  const DictionaryConfig& config() const { return config_; }
  // [n_features, d_in] float32, unit-norm rows.
  const torch::Tensor& features() const { return features_; }

  // keys [n] -> [n, d_in] float32 rows.
  torch::Tensor rows(const std::vector<std::uint64_t>& keys) const;
  // The active features of one row and their coefficients (what rows() sums).
  struct Code {
    std::vector<std::int64_t> feature;
    std::vector<float> coefficient;
  };
  Code code(std::uint64_t key) const;

 private:
  DictionaryConfig config_;
  torch::Tensor features_;
};

// Key of every position of a token batch: a hash of the seed and the tokens up to and including
// that position, so a row depends on its context the way a causal model's activation does.
// tokens [batch, seq] int64 -> keys in row-major order (batch * seq of them).
std::vector<std::uint64_t> prefix_keys(const torch::Tensor& tokens, std::uint64_t seed);

// The 64-bit mixing function used throughout (splitmix64's finalizer).
std::uint64_t mix64(std::uint64_t x);

}  // namespace saelab::synthetic
