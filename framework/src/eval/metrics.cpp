#include "saelab/eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"

namespace saelab::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Every sum leaves the device once, as float64, so long streams do not lose precision.
torch::Tensor f64(const torch::Tensor& t) {
  return t.to(torch::kFloat64);
}
double item(const torch::Tensor& t) {
  return t.cpu().item<double>();
}

void check_pair(const torch::Tensor& x, const torch::Tensor& x_hat, const char* what) {
  SAELAB_CHECK(x.dim() == 2 && x.sizes() == x_hat.sizes(), Error, what,
               ": x and x_hat must both be [n, d]; got ", x.sizes(), " and ", x_hat.sizes());
}

double ratio(double num, double den) {
  return den == 0.0 ? kNaN : num / den;
}

}  // namespace

torch::Tensor active_latents(const torch::Tensor& latents) {
  return f64(latents.ne(0).sum(-1));
}

torch::Tensor squared_error(const torch::Tensor& x, const torch::Tensor& x_hat) {
  return (f64(x) - f64(x_hat)).pow(2).sum(-1);
}

torch::Tensor cosine_similarity(const torch::Tensor& x, const torch::Tensor& x_hat) {
  auto a = f64(x), b = f64(x_hat);
  auto denom = a.norm(2, -1) * b.norm(2, -1);
  auto dot = (a * b).sum(-1);
  return at::where(denom > 0, dot / denom.clamp_min(std::numeric_limits<double>::min()), at::zeros_like(dot));
}

torch::Tensor kl_divergence(const torch::Tensor& logits_p, const torch::Tensor& logits_q) {
  SAELAB_CHECK(logits_p.sizes() == logits_q.sizes(), Error,
               "kl_divergence: logits shapes differ: ", logits_p.sizes(), " vs ", logits_q.sizes());
  auto lp = at::log_softmax(f64(logits_p), -1);
  auto lq = at::log_softmax(f64(logits_q), -1);
  return (lp.exp() * (lp - lq)).sum(-1);
}

double explained_variance(double residual_sum_squares, double total_sum_squares) {
  return total_sum_squares == 0.0 ? kNaN : 1.0 - residual_sum_squares / total_sum_squares;
}

double ce_loss_score(double ce_clean, double ce_spliced, double ce_ablated) {
  return ratio(ce_ablated - ce_spliced, ce_ablated - ce_clean);
}

double kl_div_score(double kl_spliced, double kl_ablated) {
  return ratio(kl_ablated - kl_spliced, kl_ablated);
}

double relative_reconstruction_bias(double sum_xhat_squared, double sum_x_dot_xhat) {
  return ratio(sum_xhat_squared, sum_x_dot_xhat);
}

double feature_density(std::int64_t fires, std::int64_t tokens) {
  return tokens == 0 ? kNaN : double(fires) / double(tokens);
}

double log10_feature_density(std::int64_t fires, std::int64_t tokens) {
  return std::log10(feature_density(fires, tokens) + kLogDensityEpsilon);
}

std::int64_t dead_latents(const torch::Tensor& fire_counts) {
  return fire_counts.eq(0).sum().item<std::int64_t>();
}

nlohmann::json json_number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

torch::Tensor max_cosine_to_others(const torch::Tensor& directions) {
  SAELAB_CHECK(directions.dim() == 2, Error, "max_cosine_to_others: directions must be [n, d], got ",
               directions.sizes());
  const auto x = directions.to(torch::kCPU, torch::kFloat64);
  const auto norm = x.norm(2, 1, true);
  const auto unit = at::where(norm.gt(0), x / norm.clamp_min(1e-300), torch::zeros_like(x));
  const std::int64_t n = unit.size(0), block = 512;
  auto out = torch::full({n}, kNaN, torch::kFloat64);
  if (n < 2) return out;
  for (std::int64_t r0 = 0; r0 < n; r0 += block) {
    const std::int64_t b = std::min(block, n - r0);
    auto cos = torch::matmul(unit.narrow(0, r0, b), unit.t());  // [b, n]
    cos.diagonal(r0).fill_(-std::numeric_limits<double>::infinity());
    out.narrow(0, r0, b).copy_(std::get<0>(cos.max(1)));
  }
  return out;
}

// ---- ReconstructionAccumulator ----

void ReconstructionAccumulator::add(const torch::Tensor& x, const torch::Tensor& x_hat) {
  check_pair(x, x_hat, "ReconstructionAccumulator::add");
  const std::int64_t nb = x.size(0);
  if (nb == 0) return;
  auto xd = f64(x), xh = f64(x_hat);
  auto mean_b = xd.mean(0);  // [d]
  double m2_b = item((xd - mean_b).pow(2).sum());
  if (n_ == 0) {
    mean_ = mean_b.cpu();
    m2_ = m2_b;
  } else {
    SAELAB_CHECK(mean_.size(0) == x.size(1), Error, "ReconstructionAccumulator::add: width ", x.size(1),
                 " differs from the earlier batches' ", mean_.size(0));
    // Chan et al. pairwise merge of (count, mean, Σ‖x − mean‖²).
    auto delta = mean_b.cpu() - mean_;
    const double n = double(n_ + nb);
    m2_ += m2_b + item(delta.pow(2).sum()) * double(n_) * double(nb) / n;
    mean_ = mean_ + delta * (double(nb) / n);
  }
  n_ += nb;
  sse_ += item(metrics::squared_error(xd, xh).sum());
  sum_cos_ += item(metrics::cosine_similarity(xd, xh).sum());
  auto norm_in = xd.norm(2, -1), norm_out = xh.norm(2, -1);
  sum_xhat_sq_ += item(norm_out.pow(2).sum());
  sum_dot_ += item((xd * xh).sum());
  sum_norm_in_ += item(norm_in.sum());
  sum_norm_out_ += item(norm_out.sum());
  auto divisor = at::where(norm_in.abs() < 1e-4, at::ones_like(norm_in), norm_in);
  sum_ratio_ += item((norm_out / divisor).sum());
}

ReconstructionMetrics ReconstructionAccumulator::result() const {
  ReconstructionMetrics r;
  r.tokens = n_;
  if (n_ == 0) {
    r.explained_variance = r.mse = r.mse_per_element = r.variance_per_token = kNaN;
    r.cosine_similarity = r.relative_reconstruction_bias = kNaN;
    r.l2_norm_in = r.l2_norm_out = r.l2_ratio = kNaN;
    return r;
  }
  const double n = double(n_);
  const double d = double(mean_.size(0));
  r.explained_variance = metrics::explained_variance(sse_, m2_);
  r.mse = sse_ / n;
  r.mse_per_element = sse_ / (n * d);
  r.variance_per_token = m2_ / n;
  r.cosine_similarity = sum_cos_ / n;
  r.relative_reconstruction_bias = metrics::relative_reconstruction_bias(sum_xhat_sq_, sum_dot_);
  r.l2_norm_in = sum_norm_in_ / n;
  r.l2_norm_out = sum_norm_out_ / n;
  r.l2_ratio = sum_ratio_ / n;
  return r;
}

nlohmann::json ReconstructionMetrics::to_json() const {
  return {{"tokens", tokens},
          {"explained_variance", json_number(explained_variance)},
          {"mse", json_number(mse)},
          {"mse_per_element", json_number(mse_per_element)},
          {"variance_per_token", json_number(variance_per_token)},
          {"cosine_similarity", json_number(cosine_similarity)},
          {"relative_reconstruction_bias", json_number(relative_reconstruction_bias)},
          {"l2_norm_in", json_number(l2_norm_in)},
          {"l2_norm_out", json_number(l2_norm_out)},
          {"l2_ratio", json_number(l2_ratio)}};
}

// ---- LatentFiringAccumulator ----

L0Distribution l0_distribution(const std::vector<std::int64_t>& histogram, std::int64_t tokens) {
  L0Distribution d;
  if (tokens == 0) {
    d.std = d.p10 = d.p50 = d.p90 = d.max = kNaN;
    return d;
  }
  double sum = 0, sum_sq = 0;
  for (std::size_t k = 0; k < histogram.size(); ++k) {
    sum += double(k) * double(histogram[k]);
    sum_sq += double(k) * double(k) * double(histogram[k]);
    if (histogram[k] > 0) d.max = double(k);
  }
  const double n = double(tokens), mean = sum / n;
  d.std = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
  // The smallest L0 with at least p of the tokens at or below it.
  auto percentile = [&](double p) {
    std::int64_t seen = 0;
    for (std::size_t k = 0; k < histogram.size(); ++k)
      if ((seen += histogram[k]) >= std::int64_t(std::ceil(p * n))) return double(k);
    return d.max;
  };
  d.p10 = percentile(0.1), d.p50 = percentile(0.5), d.p90 = percentile(0.9);
  return d;
}

LatentFiringAccumulator::LatentFiringAccumulator(std::int64_t d_sae)
    : d_sae_(d_sae),
      counts_(torch::zeros({d_sae}, torch::kInt64)),
      max_(torch::zeros({d_sae}, torch::kFloat32)),
      sum_(torch::zeros({d_sae}, torch::kFloat64)),
      l0_histogram_(std::size_t(d_sae + 1), 0) {}

void LatentFiringAccumulator::add(const torch::Tensor& latents) {
  SAELAB_CHECK(latents.dim() == 2 && latents.size(1) == d_sae_, Error,
               "LatentFiringAccumulator::add: latents must be [n, ", d_sae_, "]; got ", latents.sizes());
  if (latents.size(0) == 0) return;
  auto fired = latents.ne(0);
  counts_ += fired.sum(0).to(torch::kInt64).cpu();
  max_ = at::maximum(max_, std::get<0>(latents.max(0)).to(torch::kFloat32).cpu());
  sum_ += f64(latents).sum(0).cpu();
  const auto l0 = fired.sum(1).to(torch::kInt64).cpu().contiguous();  // [n]
  const auto* l0p = l0.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < l0.size(0); ++i) ++l0_histogram_[std::size_t(l0p[i])];
  sum_l0_ += item(l0.sum());
  sum_l1_ += item(f64(latents).abs().sum());
  tokens_ += latents.size(0);
}

SparsityMetrics LatentFiringAccumulator::result() const {
  SparsityMetrics s;
  s.tokens = tokens_;
  s.d_sae = d_sae_;
  s.dead_latents = metrics::dead_latents(counts_);
  s.l0 = tokens_ == 0 ? kNaN : sum_l0_ / double(tokens_);
  s.l1 = tokens_ == 0 ? kNaN : sum_l1_ / double(tokens_);
  s.l0_distribution = l0_distribution(l0_histogram_, tokens_);
  if (d_sae_ > 0 && tokens_ > 0) {
    const double n = double(tokens_), d = double(d_sae_);
    s.frac_alive = double(d_sae_ - s.dead_latents) / d;
    s.freq_over_1_percent = counts_.to(torch::kFloat64).div(n).gt(0.01).sum().item<double>() / d;
    s.freq_over_10_percent = counts_.to(torch::kFloat64).div(n).gt(0.1).sum().item<double>() / d;
  } else {
    s.frac_alive = s.freq_over_1_percent = s.freq_over_10_percent = kNaN;
  }
  return s;
}

nlohmann::json SparsityMetrics::to_json() const {
  return {{"tokens", tokens},
          {"d_sae", d_sae},
          {"l0", json_number(l0)},
          {"l1", json_number(l1)},
          {"l0_distribution",
           {{"std", json_number(l0_distribution.std)},
            {"p10", json_number(l0_distribution.p10)},
            {"p50", json_number(l0_distribution.p50)},
            {"p90", json_number(l0_distribution.p90)},
            {"max", json_number(l0_distribution.max)}}},
          {"frac_alive", json_number(frac_alive)},
          {"freq_over_1_percent", json_number(freq_over_1_percent)},
          {"freq_over_10_percent", json_number(freq_over_10_percent)},
          {"dead_latents", dead_latents},
          {"alive_latents", d_sae - dead_latents},
          {"dead_fraction", json_number(d_sae == 0 ? kNaN : double(dead_latents) / double(d_sae))}};
}

// ---- DownstreamAccumulator ----

namespace {
double masked_sum(const torch::Tensor& v, const torch::Tensor& mask) {
  SAELAB_CHECK(v.sizes() == mask.sizes(), Error, "DownstreamAccumulator: values ", v.sizes(), " and mask ",
               mask.sizes(), " differ in shape");
  return item(f64(v).masked_select(mask.to(torch::kBool)).sum());
}
}  // namespace

void DownstreamAccumulator::add_ce(ModelRun run, const torch::Tensor& ce, const torch::Tensor& mask) {
  const int r = int(run);
  ce_sum_[r] += masked_sum(ce, mask);
  ce_n_[r] += mask.to(torch::kBool).sum().item<std::int64_t>();
}

void DownstreamAccumulator::add_kl(ModelRun run, const torch::Tensor& kl, const torch::Tensor& mask) {
  SAELAB_CHECK(run != ModelRun::Clean, Error, "DownstreamAccumulator: KL is measured against the clean run");
  const int r = int(run);
  kl_sum_[r] += masked_sum(kl, mask);
  kl_n_[r] += mask.to(torch::kBool).sum().item<std::int64_t>();
}

void DownstreamAccumulator::add_ce(const torch::Tensor& clean, const torch::Tensor& spliced,
                                   const torch::Tensor& ablated, const torch::Tensor& mask) {
  add_ce(ModelRun::Clean, clean, mask);
  add_ce(ModelRun::Spliced, spliced, mask);
  add_ce(ModelRun::ZeroAblated, ablated, mask);
}

void DownstreamAccumulator::add_kl(const torch::Tensor& spliced, const torch::Tensor& ablated,
                                   const torch::Tensor& mask) {
  add_kl(ModelRun::Spliced, spliced, mask);
  add_kl(ModelRun::ZeroAblated, ablated, mask);
}

void DownstreamAccumulator::add_error_term_gap(const torch::Tensor& clean, const torch::Tensor& with_error,
                                               const torch::Tensor& mask) {
  const auto gap = (f64(with_error) - f64(clean)).abs().masked_select(mask.to(torch::kBool));
  if (gap.numel() > 0) error_gap_ = std::max(error_gap_, item(gap.max()));
}

DownstreamMetrics DownstreamAccumulator::result() const {
  auto ce = [&](ModelRun run) {
    const int r = int(run);
    return ce_n_[r] == 0 ? kNaN : ce_sum_[r] / double(ce_n_[r]);
  };
  auto kl = [&](ModelRun run) {
    const int r = int(run);
    return kl_n_[r] == 0 ? kNaN : kl_sum_[r] / double(kl_n_[r]);
  };
  DownstreamMetrics r;
  r.ce_positions = ce_n_[int(ModelRun::Clean)];
  r.kl_positions = kl_n_[int(ModelRun::Spliced)];
  r.ce_clean = ce(ModelRun::Clean);
  r.ce_spliced = ce(ModelRun::Spliced);
  r.ce_ablated = ce(ModelRun::ZeroAblated);
  r.ce_loss_score = metrics::ce_loss_score(r.ce_clean, r.ce_spliced, r.ce_ablated);
  r.kl_spliced = kl(ModelRun::Spliced);
  r.kl_ablated = kl(ModelRun::ZeroAblated);
  r.kl_div_score = metrics::kl_div_score(r.kl_spliced, r.kl_ablated);
  r.ce_mean_ablated = ce(ModelRun::MeanAblated);
  r.ce_loss_score_mean_ablation = metrics::ce_loss_score(r.ce_clean, r.ce_spliced, r.ce_mean_ablated);
  r.kl_mean_ablated = kl(ModelRun::MeanAblated);
  r.kl_div_score_mean_ablation = metrics::kl_div_score(r.kl_spliced, r.kl_mean_ablated);
  r.ce_with_error_term = ce(ModelRun::WithErrorTerm);
  r.kl_with_error_term = kl(ModelRun::WithErrorTerm);
  r.error_term_max_abs_ce_diff = ce_n_[int(ModelRun::WithErrorTerm)] ? error_gap_ : kNaN;
  return r;
}

nlohmann::json DownstreamMetrics::to_json() const {
  return {{"ce_positions", ce_positions},
          {"kl_positions", kl_positions},
          {"ce_loss_clean", json_number(ce_clean)},
          {"ce_loss_spliced", json_number(ce_spliced)},
          {"ce_loss_ablated", json_number(ce_ablated)},
          {"ce_loss_score", json_number(ce_loss_score)},
          {"kl_div_spliced", json_number(kl_spliced)},
          {"kl_div_ablated", json_number(kl_ablated)},
          {"kl_div_score", json_number(kl_div_score)},
          {"ce_loss_mean_ablated", json_number(ce_mean_ablated)},
          {"ce_loss_score_mean_ablation", json_number(ce_loss_score_mean_ablation)},
          {"kl_div_mean_ablated", json_number(kl_mean_ablated)},
          {"kl_div_score_mean_ablation", json_number(kl_div_score_mean_ablation)},
          {"ce_loss_with_error_term", json_number(ce_with_error_term)},
          {"kl_div_with_error_term", json_number(kl_with_error_term)},
          {"error_term_max_abs_ce_diff", json_number(error_term_max_abs_ce_diff)}};
}

}  // namespace saelab::metrics
