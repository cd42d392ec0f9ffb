#include "saelab/features/directions.hpp"

#include <algorithm>
#include <limits>

#include "saelab/core/error.hpp"

namespace saelab {

std::vector<std::vector<Neighbour>> decoder_neighbours(const torch::Tensor& w_dec, std::int64_t n,
                                                       std::int64_t block) {
  SAELAB_CHECK(w_dec.dim() == 2, Error, "decoder neighbours: W_dec has shape ", w_dec.sizes(),
               "; expected [d_sae, d_in]");
  torch::NoGradGuard no_grad;
  const std::int64_t d_sae = w_dec.size(0);
  const auto w = w_dec.to(torch::kFloat32);
  const auto unit = w / w.norm(2, 1, true).clamp_min(1e-30);  // [d_sae, d_in]; zero rows stay zero
  const std::int64_t k = std::min<std::int64_t>(n, d_sae - 1);
  std::vector<std::vector<Neighbour>> out(static_cast<std::size_t>(d_sae));
  if (k <= 0) return out;
  for (std::int64_t b0 = 0; b0 < d_sae; b0 += block) {
    const std::int64_t m = std::min(block, d_sae - b0);
    auto sim = at::mm(unit.narrow(0, b0, m), unit.t());  // [m, d_sae]
    const auto self = torch::arange(b0, b0 + m, torch::kInt64).to(sim.device()).unsqueeze(1);
    sim.scatter_(1, self, -std::numeric_limits<float>::infinity());
    // topk's order among equal values is unspecified: take a margin of candidates and sort them by
    // (cosine desc, index asc) so ties resolve the same way everywhere.
    const std::int64_t extra = std::min<std::int64_t>(d_sae - 1, k + 8);
    auto [vals, idx] = sim.topk(extra, 1, true, true);
    vals = vals.to(torch::kCPU).contiguous();
    idx = idx.to(torch::kCPU, torch::kInt64).contiguous();
    for (std::int64_t i = 0; i < m; ++i) {
      std::vector<Neighbour> cand;
      for (std::int64_t t = 0; t < extra; ++t)
        cand.push_back({idx.data_ptr<std::int64_t>()[i * extra + t], vals.data_ptr<float>()[i * extra + t]});
      std::sort(cand.begin(), cand.end(), [](const Neighbour& a, const Neighbour& b) {
        return a.cos != b.cos ? a.cos > b.cos : a.id < b.id;
      });
      cand.resize(static_cast<std::size_t>(k));
      out[static_cast<std::size_t>(b0 + i)] = std::move(cand);
    }
  }
  return out;
}

namespace {

std::vector<LogitEntry> entries(const torch::Tensor& vals, const torch::Tensor& idx, std::int64_t row,
                                std::int64_t k) {
  std::vector<LogitEntry> out;
  for (std::int64_t t = 0; t < k; ++t)
    out.push_back({static_cast<std::int32_t>(idx.data_ptr<std::int64_t>()[row * k + t]),
                   vals.data_ptr<float>()[row * k + t]});
  return out;
}

}  // namespace

LogitTables logit_tables(ActivationSource& source, const std::string& hook, const torch::Tensor& w_dec,
                         double input_scale, std::int64_t n, std::int64_t block) {
  LogitTables t;
  if (n <= 0) {
    t.reason = "Logit effects were switched off (logit_tokens: 0).";
    return t;
  }
  torch::NoGradGuard no_grad;
  const std::int64_t d_sae = w_dec.size(0);
  for (std::int64_t b0 = 0; b0 < d_sae; b0 += block) {
    const std::int64_t m = std::min(block, d_sae - b0);
    const auto dirs = w_dec.narrow(0, b0, m).to(source.device(), torch::kFloat32) / input_scale;
    const auto eff = source.logit_effects(dirs, hook);  // [m, vocab]
    if (!eff.defined()) {
      t.reason = cat("Hook '", hook,
                     "' is not in the residual stream, so its directions have no direct logit effect.");
      return t;
    }
    SAELAB_CHECK(eff.dim() == 2 && eff.size(0) == m, Error, "logit effects: the source returned ",
                 eff.sizes(), " for ", m, " directions at hook '", hook, "'");
    const std::int64_t k = std::min(n, eff.size(1));
    auto [tv, ti] = eff.topk(k, 1, true, true);
    auto [bv, bi] = eff.topk(k, 1, false, true);
    tv = tv.to(torch::kCPU, torch::kFloat32).contiguous();
    bv = bv.to(torch::kCPU, torch::kFloat32).contiguous();
    ti = ti.to(torch::kCPU, torch::kInt64).contiguous();
    bi = bi.to(torch::kCPU, torch::kInt64).contiguous();
    for (std::int64_t i = 0; i < m; ++i) t.latents.push_back({entries(tv, ti, i, k), entries(bv, bi, i, k)});
  }
  t.available = true;
  return t;
}

}  // namespace saelab
