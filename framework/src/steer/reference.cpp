#include "saelab/steer/reference.hpp"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/sae/apply.hpp"

namespace saelab {

double nearest_rank_quantile(const std::vector<float>& sorted_positive, std::int64_t rows, double q) {
  SAELAB_CHECK(q >= 0.0 && q <= 1.0, UsageError, "quantile ", q, " must lie in [0, 1] (e.g. 0.999)");
  SAELAB_CHECK(rows > 0, Error, "a quantile needs at least one reference row");
  const auto n_pos = static_cast<std::int64_t>(sorted_positive.size());
  const auto rank =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(q * static_cast<double>(rows))));
  const std::int64_t zeros = rows - n_pos;
  if (rank <= zeros) return 0.0;
  return sorted_positive[static_cast<std::size_t>(std::min(rank - zeros, n_pos) - 1)];
}

double LatentReference::max_of(std::int64_t latent) const {
  SAELAB_CHECK(max.defined() && latent >= 0 && latent < max.size(0), UsageError, "latent ", latent,
               " does not exist: the SAE has latents 0 to ", max.defined() ? max.size(0) - 1 : -1);
  return max[latent].item<double>();
}

double LatentReference::quantile(std::int64_t latent, double q) const {
  auto it = positive.find(latent);
  SAELAB_CHECK(it != positive.end(), Error, "latent ", latent, "'s reference activations were not kept");
  return nearest_rank_quantile(it->second, rows, q);
}

LatentReference reference_statistics(FeatureScan& scan, SaeArchitecture& sae, std::vector<std::int64_t> keep,
                                     std::int64_t block) {
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  torch::NoGradGuard no_grad;
  EvalModeGuard eval(sae);
  const auto d_sae = sae.shape().d_sae;
  for (auto f : keep)
    SAELAB_CHECK(f >= 0 && f < d_sae, UsageError, "latent ", f, " does not exist: the SAE has latents 0 to ",
                 d_sae - 1);
  LatentReference ref;
  ref.max = at::zeros({d_sae}, torch::kFloat32);
  for (auto f : keep) ref.positive[f];
  const auto keep_idx = torch::tensor(keep, torch::kInt64);
  ScanChunk chunk;
  while (scan.next(chunk)) {
    for (std::int64_t r = 0; r < chunk.rows(); r += block) {
      const auto f = encode_sae(sae, chunk.x.narrow(0, r, std::min(block, chunk.rows() - r)), 1.0)
                         .to(torch::kCPU, torch::kFloat32);  // [n, d_sae]
      ref.max = at::maximum(ref.max, std::get<0>(f.max(0)));
      if (keep.empty()) continue;
      const auto kept = f.index_select(1, keep_idx).t().contiguous();  // [k, n]
      for (std::size_t i = 0; i < keep.size(); ++i) {
        const auto row = kept[static_cast<std::int64_t>(i)];
        const auto pos = row.masked_select(row.gt(0)).contiguous();
        auto& v = ref.positive[keep[i]];
        v.insert(v.end(), pos.data_ptr<float>(), pos.data_ptr<float>() + pos.numel());
      }
    }
    ref.rows += chunk.rows();
  }
  SAELAB_CHECK(ref.rows > 0, Error, "the reference corpus (", scan.description(), ") gave no rows");
  for (auto& [f, v] : ref.positive) std::sort(v.begin(), v.end());
  ref.description = scan.description();
  return ref;
}

}  // namespace saelab
