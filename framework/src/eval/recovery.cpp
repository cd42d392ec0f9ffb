#include "saelab/eval/recovery.hpp"

#include <limits>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/eval/metrics.hpp"

namespace saelab::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Rows scaled to unit norm in float64 on the CPU; zero rows stay zero.
torch::Tensor unit_rows(const torch::Tensor& m) {
  const auto x = m.to(torch::kCPU, torch::kFloat64);
  const auto norm = x.norm(2, 1, true);
  return at::where(norm.gt(0), x / norm.clamp_min(1e-300), torch::zeros_like(x));
}

// Hungarian method with potentials for a cost matrix [n, m], n ≤ m, row-major: each row's column.
std::vector<std::int64_t> min_cost_assignment(const double* cost, std::int64_t n, std::int64_t m) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(m + 1, 0), minv(m + 1);
  std::vector<std::int64_t> owner(m + 1, 0), way(m + 1, 0);  // owner[col] = row (1-based), 0 = free
  std::vector<char> used(m + 1);
  for (std::int64_t i = 1; i <= n; ++i) {
    owner[0] = i;
    std::int64_t j0 = 0;
    std::fill(minv.begin(), minv.end(), inf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const std::int64_t i0 = owner[j0];
      double delta = inf;
      std::int64_t j1 = 0;
      const double* row = cost + (i0 - 1) * m;
      for (std::int64_t j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = row[j - 1] - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (std::int64_t j = 0; j <= m; ++j) {
        if (used[j]) {
          u[owner[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (owner[j0] != 0);
    do {
      const std::int64_t j1 = way[j0];
      owner[j0] = owner[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<std::int64_t> col_of(n, -1);
  for (std::int64_t j = 1; j <= m; ++j)
    if (owner[j] != 0) col_of[owner[j] - 1] = j - 1;
  return col_of;
}

double share(std::int64_t num, std::int64_t den) {
  return den ? double(num) / double(den) : 0.0;
}

}  // namespace

torch::Tensor abs_cosine_matrix(const torch::Tensor& a, const torch::Tensor& b) {
  SAELAB_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), Error, "recovery: ", a.sizes(),
               " and ", b.sizes(), " must be [F, d] and [S, d] with the same d");
  return torch::matmul(unit_rows(a), unit_rows(b).t()).abs();
}

std::vector<std::int64_t> max_weight_matching(const torch::Tensor& weights) {
  SAELAB_CHECK(weights.dim() == 2, Error, "matching: weights must be [n, m], got ", weights.sizes());
  const std::int64_t n = weights.size(0), m = weights.size(1);
  if (n == 0 || m == 0) return std::vector<std::int64_t>(n, -1);
  const bool flip = n > m;  // the method wants no more rows than columns
  const auto cost = (flip ? -weights.t() : -weights).to(torch::kCPU, torch::kFloat64).contiguous();
  auto assigned = min_cost_assignment(cost.data_ptr<double>(), cost.size(0), cost.size(1));
  if (!flip) return assigned;
  std::vector<std::int64_t> row_of_col(n, -1);
  for (std::int64_t c = 0; c < m; ++c) row_of_col[assigned[c]] = c;
  return row_of_col;
}

DictionaryRecovery dictionary_recovery(const torch::Tensor& true_features, const torch::Tensor& decoder,
                                       double threshold) {
  const auto cos = abs_cosine_matrix(true_features, decoder);  // [F, S]
  DictionaryRecovery r;
  r.threshold = threshold;
  r.planted = cos.size(0);
  r.latents = cos.size(1);
  if (r.planted == 0 || r.latents == 0) {
    r.mcc = r.mean_max_cosine = r.fraction_recovered = r.uniqueness = kNaN;
    r.best_feature = torch::zeros({r.latents}, torch::kInt64);
    return r;
  }
  const auto max_cos = std::get<0>(cos.max(1));  // [F]
  r.mean_max_cosine = max_cos.mean().item<double>();
  r.recovered = max_cos.ge(threshold).sum().item<std::int64_t>();
  r.fraction_recovered = double(r.recovered) / double(r.planted);
  auto [latent_cos, best] = cos.max(0);  // [S]
  r.best_feature = best;
  r.uniqueness = double(std::get<0>(at::_unique(best)).numel()) / double(r.latents);
  const auto claims = torch::zeros({r.planted}, torch::kInt64)
                          .index_add_(0, best, latent_cos.ge(threshold).to(torch::kInt64));
  r.features_claimed_by_several = claims.gt(1).sum().item<std::int64_t>();
  if (r.planted * r.latents > kMaxMatchingEntries) {
    r.mcc = kNaN;
    return r;
  }
  const auto match = max_weight_matching(cos);
  const auto* c = cos.contiguous().data_ptr<double>();
  double sum = 0;
  std::int64_t pairs = 0;
  for (std::int64_t i = 0; i < r.planted; ++i)
    if (match[i] >= 0) sum += c[i * r.latents + match[i]], ++pairs;
  r.mcc = sum / double(pairs);
  return r;
}

ClassificationAccumulator::ClassificationAccumulator(torch::Tensor best_feature)
    : best_feature_(best_feature.to(torch::kCPU, torch::kInt64)) {
  const auto S = best_feature_.size(0);
  tp_ = torch::zeros({S}, torch::kInt64);
  fp_ = torch::zeros({S}, torch::kInt64);
  fn_ = torch::zeros({S}, torch::kInt64);
}

void ClassificationAccumulator::add(const torch::Tensor& coefficients, const torch::Tensor& latents) {
  const auto S = best_feature_.size(0);
  SAELAB_CHECK(coefficients.dim() == 2 && latents.dim() == 2 && latents.size(1) == S &&
                   latents.size(0) == coefficients.size(0),
               Error, "recovery: coefficients ", coefficients.sizes(), " and latents ", latents.sizes(),
               " must be [n, F] and [n, ", S, "] for the same rows");
  const auto truth = coefficients.cpu().index_select(1, best_feature_).gt(0);  // [n, S]
  const auto fires = latents.cpu().ne(0);                                      // [n, S]
  tp_ += fires.logical_and(truth).sum(0);
  fp_ += fires.logical_and(truth.logical_not()).sum(0);
  fn_ += fires.logical_not().logical_and(truth).sum(0);
  rows_ += coefficients.size(0);
}

ClassificationMetrics ClassificationAccumulator::result() const {
  ClassificationMetrics r;
  r.rows = rows_;
  const std::int64_t S = best_feature_.size(0);
  if (S == 0 || rows_ == 0) {
    r.precision = r.recall = r.f1 = r.accuracy = kNaN;
    return r;
  }
  const auto* tp = tp_.data_ptr<std::int64_t>();
  const auto* fp = fp_.data_ptr<std::int64_t>();
  const auto* fn = fn_.data_ptr<std::int64_t>();
  for (std::int64_t j = 0; j < S; ++j) {
    const double p = share(tp[j], tp[j] + fp[j]), q = share(tp[j], tp[j] + fn[j]);
    r.precision += p;
    r.recall += q;
    r.f1 += p + q > 0 ? 2 * p * q / (p + q) : 0.0;
    r.accuracy += double(rows_ - fp[j] - fn[j]) / double(rows_);
  }
  r.precision /= double(S), r.recall /= double(S), r.f1 /= double(S), r.accuracy /= double(S);
  return r;
}

nlohmann::json recovery_json(const DictionaryRecovery& d, const ClassificationMetrics& c) {
  return {{"planted_features", d.planted},
          {"latents", d.latents},
          {"threshold", d.threshold},
          {"mcc", json_number(d.mcc)},
          {"mean_max_cosine", json_number(d.mean_max_cosine)},
          {"fraction_recovered", json_number(d.fraction_recovered)},
          {"recovered_features", d.recovered},
          {"uniqueness", json_number(d.uniqueness)},
          {"features_claimed_by_several", d.features_claimed_by_several},
          {"precision", json_number(c.precision)},
          {"recall", json_number(c.recall)},
          {"f1", json_number(c.f1)},
          {"accuracy", json_number(c.accuracy)},
          {"classification_rows", c.rows}};
}

}  // namespace saelab::metrics
