#include "saelab/models/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "saelab/core/error.hpp"

namespace saelab::models {

void check_generate_options(const GenerateOptions& o) {
  SAELAB_CHECK(o.max_new_tokens >= 0, UsageError, "generate: max_new_tokens is ", o.max_new_tokens,
               "; give 0 or more");
  SAELAB_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, UsageError, "generate: temperature is ",
               o.temperature, "; give 0 (greedy) or a positive number");
  SAELAB_CHECK(o.top_p > 0 && o.top_p <= 1, UsageError, "generate: top_p is ", o.top_p, "; allowed: (0, 1]");
}

std::int32_t next_token(const torch::Tensor& logits, const GenerateOptions& opts, DetRng& rng) {
  const auto l = logits.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* p = l.data_ptr<double>();
  const std::int64_t n = l.numel();
  // NaN would break the ordering below (std::sort needs a strict weak order); an edit that drives
  // the model to inf or NaN gets a message instead of a garbage token.
  SAELAB_CHECK(std::all_of(p, p + n, [](double v) { return std::isfinite(v); }), Error,
               "generate: the next-token logits are not all finite (inf or NaN), so no token can be chosen; "
               "an intervention is probably too strong: use a smaller value");
  if (opts.temperature == 0) return static_cast<std::int32_t>(std::max_element(p, p + n) - p);
  std::vector<std::int32_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::int32_t a, std::int32_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
  const double top = p[order[0]];
  std::vector<double> w;
  double total = 0;
  for (auto id : order) {
    w.push_back(std::exp((p[id] - top) / opts.temperature));
    total += w.back();
  }
  double kept = 0;
  std::size_t k = 0;
  while (k < w.size() && kept < opts.top_p * total) kept += w[k++];
  // A uniform double in [0, kept) from the top 53 bits.
  const double u = static_cast<double>(rng.next() >> 11) * (1.0 / 9007199254740992.0) * kept;
  double acc = 0;
  for (std::size_t i = 0; i < k; ++i) {
    acc += w[i];
    if (u < acc) return order[i];
  }
  return order[k - 1];
}

}  // namespace saelab::models
