// Sparse probing (method and names in saelab/eval/probing.hpp).
#include "saelab/eval/probing.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/eval/metrics.hpp"

namespace saelab::metrics {

namespace {

constexpr std::int64_t kMaxNewtonSteps = 100;

// log(1 + exp(-m)) without overflow.
torch::Tensor log1p_exp_neg(const torch::Tensor& m) {
  return at::clamp_min(-m, 0) + at::log1p(at::exp(-m.abs()));
}

struct LogisticProblem {
  torch::Tensor a;     // [n, k + 1] rows with a trailing 1 for the intercept
  torch::Tensor sign;  // [n] +1 positive, -1 negative
  torch::Tensor reg;   // [k + 1] 1 for weights, 0 for the intercept
  double C;

  double objective(const torch::Tensor& theta) const {
    const auto margin = sign * at::matmul(a, theta);
    return (0.5 * (reg * theta * theta).sum() + C * log1p_exp_neg(margin).sum()).item<double>();
  }
};

}  // namespace

LogisticFit fit_logistic(const torch::Tensor& x, const torch::Tensor& positive, double C) {
  SAELAB_CHECK(x.dim() == 2 && positive.dim() == 1 && positive.size(0) == x.size(0) && x.size(0) > 0, Error,
               "fit_logistic: expected x [n, k] and labels [n] with n > 0, got ", x.sizes(), " and ",
               positive.sizes());
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const std::int64_t n = x.size(0), k = x.size(1);
  LogisticProblem p{at::cat({x.to(torch::kCPU, torch::kFloat64), torch::ones({n, 1}, opts)}, 1),
                    positive.to(torch::kCPU, torch::kFloat64) * 2 - 1, torch::ones({k + 1}, opts), C};
  p.reg[k] = 0.0;
  torch::Tensor theta = torch::zeros({k + 1}, opts);
  LogisticFit fit;
  double f = p.objective(theta);
  for (; fit.iterations < kMaxNewtonSteps; ++fit.iterations) {
    const auto margin = p.sign * at::matmul(p.a, theta);
    const auto miss = at::sigmoid(-margin);  // [n] probability given to the wrong class
    const auto grad = p.reg * theta - C * at::matmul(p.a.t(), p.sign * miss);
    fit.gradient_norm = grad.abs().max().item<double>();
    if (fit.gradient_norm < 1e-10 * (1.0 + C * double(n))) break;
    const auto w = miss * (1 - miss);
    const auto hessian = C * at::matmul(p.a.t(), p.a * w.unsqueeze(1)) + at::diag(p.reg);
    const auto step = at::linalg_solve(hessian, grad);
    // Backtracking (Armijo) keeps every step a descent even far from the optimum.
    const double slope = (grad * step).sum().item<double>();
    double t = 1.0, next = p.objective(theta - step);
    while (next > f - 1e-4 * t * slope && t > 1e-12) {
      t *= 0.5;
      next = p.objective(theta - t * step);
    }
    theta = theta - t * step;
    const bool stalled = f - next <= 1e-15 * std::max(1.0, std::abs(f));
    f = next;
    if (stalled) break;
  }
  fit.weight = theta.narrow(0, 0, k).clone();
  fit.bias = theta[k].item<double>();
  return fit;
}

double logistic_accuracy(const LogisticFit& fit, const torch::Tensor& x, const torch::Tensor& positive) {
  SAELAB_CHECK(x.dim() == 2 && x.size(1) == fit.weight.size(0) && positive.size(0) == x.size(0), Error,
               "logistic_accuracy: x ", x.sizes(), " does not match a probe of ", fit.weight.size(0),
               " inputs and ", positive.sizes(), " labels");
  if (x.size(0) == 0) return 0.0;
  const auto predicted = (at::matmul(x.to(torch::kCPU, torch::kFloat64), fit.weight) + fit.bias).gt(0);
  return predicted.eq(positive.to(torch::kCPU, torch::kBool)).to(torch::kFloat64).mean().item<double>();
}

torch::Tensor top_k_by_mean_difference(const torch::Tensor& x, const torch::Tensor& positive,
                                       std::int64_t k) {
  const auto pos = positive.to(torch::kCPU, torch::kBool);
  const auto xd = x.to(torch::kCPU, torch::kFloat64);
  SAELAB_CHECK(pos.any().item<bool>() && pos.logical_not().any().item<bool>(), Error,
               "top_k_by_mean_difference: needs rows of both classes");
  const auto diff = (xd.index({pos}).mean(0) - xd.index({pos.logical_not()}).mean(0)).abs();
  const auto order = std::get<1>(at::sort(diff, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  return order.narrow(0, 0, std::min(k, x.size(1))).clone();
}

namespace {

using Rng = std::mt19937_64;

template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

struct Split {
  std::set<std::int64_t> test_groups;
  std::int64_t train_documents = 0, test_documents = 0;
};

// Stratified by class: each class's documents shuffled, test_fraction of them (≥ 1) held out.
Split split_documents(const std::string& task, const std::map<std::string, std::vector<std::int64_t>>& docs,
                      double test_fraction, Rng& rng) {
  Split s;
  for (const auto& [cls, groups] : docs) {
    const auto n = static_cast<std::int64_t>(groups.size());
    SAELAB_CHECK(n >= 2, ConfigError, "sparse probing task '", task, "': class '", cls, "' has ", n,
                 " document; each class needs at least 2 so that one is held out for testing");
    auto shuffled = groups;
    shuffle(shuffled, rng);
    const auto test = std::clamp<std::int64_t>(std::llround(test_fraction * double(n)), 1, n - 1);
    s.test_groups.insert(shuffled.begin(), shuffled.begin() + test);
    s.test_documents += test;
    s.train_documents += n - test;
  }
  return s;
}

struct Balanced {
  torch::Tensor rows;      // [m] int64
  torch::Tensor positive;  // [m] bool
};

// SAEBench's prepare_probe_data: every positive, negatives drawn evenly from the other classes up
// to the positives' count; when negatives are fewer, positives drawn down to match.
Balanced balance(const std::vector<std::int64_t>& rows, const std::vector<std::string>& label,
                 const std::string& positive, Rng& rng) {
  std::vector<std::int64_t> pos;
  std::map<std::string, std::vector<std::int64_t>> neg;
  for (auto r : rows) (label[r] == positive ? pos : neg[label[r]]).push_back(r);
  shuffle(pos, rng);
  const std::size_t per_class = neg.empty() ? 0 : (pos.size() + neg.size() - 1) / neg.size();
  std::vector<std::int64_t> negatives;
  for (auto& [cls, v] : neg) {
    shuffle(v, rng);
    negatives.insert(negatives.end(), v.begin(), v.begin() + std::min(per_class, v.size()));
  }
  shuffle(negatives, rng);
  const std::size_t m = std::min(pos.size(), negatives.size());
  std::vector<std::int64_t> out(pos.begin(), pos.begin() + m);
  out.insert(out.end(), negatives.begin(), negatives.begin() + m);
  auto positive_mask = torch::zeros({std::int64_t(2 * m)}, torch::kBool);
  if (m > 0) positive_mask.narrow(0, 0, std::int64_t(m)).fill_(true);
  return {torch::tensor(out, torch::kInt64), positive_mask};
}

double top_k_accuracy(const torch::Tensor& train, const torch::Tensor& test, const Balanced& tr,
                      const Balanced& te, const torch::Tensor& columns, double C) {
  const auto fit = fit_logistic(train.index_select(1, columns), tr.positive, C);
  return logistic_accuracy(fit, test.index_select(1, columns), te.positive);
}

BinaryProbe binary_probe(const ProbeRows& rows, const Split& split, const std::string& positive,
                         const std::string& negative, const ProbeOptions& opts, Rng& rng) {
  std::vector<std::int64_t> train_rows, test_rows;
  for (std::size_t r = 0; r < rows.group.size(); ++r)
    (split.test_groups.count(rows.group[r]) ? test_rows : train_rows).push_back(std::int64_t(r));
  const Balanced tr = balance(train_rows, rows.label, positive, rng);
  const Balanced te = balance(test_rows, rows.label, positive, rng);
  SAELAB_CHECK(tr.rows.size(0) > 0 && te.rows.size(0) > 0, Error, "sparse probing: class '", positive,
               "' against '", negative, "' has no balanced ", tr.rows.size(0) == 0 ? "training" : "test",
               " rows");
  BinaryProbe b{positive, negative, tr.rows.size(0), te.rows.size(0), 0, {}, {}, {}};
  const auto sae_tr = rows.sae.index_select(0, tr.rows), sae_te = rows.sae.index_select(0, te.rows);
  const auto llm_tr = rows.model.index_select(0, tr.rows), llm_te = rows.model.index_select(0, te.rows);
  const auto all = torch::arange(llm_tr.size(1), torch::kInt64);
  b.llm_test_accuracy = top_k_accuracy(llm_tr, llm_te, tr, te, all, opts.C);
  for (const std::int64_t k : opts.k) {
    b.llm_top_k[k] =
        top_k_accuracy(llm_tr, llm_te, tr, te, top_k_by_mean_difference(llm_tr, tr.positive, k), opts.C);
    const auto latents = top_k_by_mean_difference(sae_tr, tr.positive, k);
    b.sae_top_k[k] = top_k_accuracy(sae_tr, sae_te, tr, te, latents, opts.C);
    if (latents.size(0) > std::int64_t(b.top_latents.size()))
      b.top_latents.assign(latents.data_ptr<std::int64_t>(),
                           latents.data_ptr<std::int64_t>() + latents.size(0));
  }
  return b;
}

}  // namespace

ProbeTask sparse_probe(const std::string& name, const ProbeRows& rows, const ProbeOptions& opts) {
  const auto n = static_cast<std::int64_t>(rows.group.size());
  SAELAB_CHECK(rows.label.size() == rows.group.size() && rows.sae.size(0) == n && rows.model.size(0) == n,
               Error, "sparse probing task '", name, "': ", n, " groups, ", rows.label.size(), " labels, ",
               rows.sae.size(0), " latent rows and ", rows.model.size(0),
               " activation rows; expected one each");
  std::map<std::string, std::vector<std::int64_t>> docs;
  for (std::int64_t r = 0; r < n; ++r) {
    auto& v = docs[rows.label[r]];
    if (std::find(v.begin(), v.end(), rows.group[r]) == v.end()) v.push_back(rows.group[r]);
  }
  SAELAB_CHECK(docs.size() >= 2, ConfigError, "sparse probing task '", name, "': its documents fall in ",
               docs.size(), " class",
               docs.size() == 1 ? " ('" + docs.begin()->first + "')" : std::string("es"),
               "; a probe needs at least 2. Check the task's pattern against the corpus's file names");
  Rng rng(opts.seed);
  const Split split = split_documents(name, docs, opts.test_fraction, rng);
  ProbeTask task{name, {}, split.train_documents, split.test_documents, {}};
  for (const auto& [cls, v] : docs) task.documents[cls] = std::int64_t(v.size());
  if (docs.size() == 2) {
    task.binary.push_back(binary_probe(rows, split, docs.begin()->first, docs.rbegin()->first, opts, rng));
  } else {
    for (const auto& entry : docs)
      task.binary.push_back(binary_probe(rows, split, entry.first, "rest", opts, rng));
  }
  return task;
}

namespace {

std::string top_name(const char* who, std::int64_t k) {
  return cat(who, "_top_", k, "_test_accuracy");
}

// The metrics of one binary task, or their mean over several, under SAEBench's names.
nlohmann::json accuracies(const std::vector<const BinaryProbe*>& probes,
                          const std::vector<std::int64_t>& ks) {
  const double n = double(probes.size());
  double llm = 0;
  for (const auto* b : probes) llm += b->llm_test_accuracy / n;
  nlohmann::json j = {{"llm_test_accuracy", json_number(llm)}};
  for (const char* who : {"llm", "sae"})
    for (const std::int64_t k : ks) {
      double mean = 0;
      for (const auto* b : probes) mean += (who[0] == 'l' ? b->llm_top_k : b->sae_top_k).at(k) / n;
      j[top_name(who, k)] = json_number(mean);
    }
  return j;
}

std::vector<std::int64_t> ks_of(const BinaryProbe& b) {
  std::vector<std::int64_t> ks;
  for (const auto& kv : b.sae_top_k) ks.push_back(kv.first);
  return ks;
}

}  // namespace

nlohmann::json probe_json(const ProbeTask& task) {
  nlohmann::json binary = nlohmann::json::array();
  std::vector<const BinaryProbe*> all;
  for (const auto& b : task.binary) {
    auto j = accuracies({&b}, ks_of(b));
    j["positive"] = b.positive;
    j["negative"] = b.negative;
    j["train_rows"] = b.train_rows;
    j["test_rows"] = b.test_rows;
    j["top_latents"] = b.top_latents;
    binary.push_back(std::move(j));
    all.push_back(&b);
  }
  nlohmann::json j = {{"classes", task.documents},
                      {"train_documents", task.train_documents},
                      {"test_documents", task.test_documents},
                      {"binary_tasks", std::move(binary)}};
  if (!all.empty()) j["mean"] = accuracies(all, ks_of(*all.front()));
  return j;
}

nlohmann::json probe_summary_json(const std::vector<ProbeTask>& tasks, const ProbeOptions& opts) {
  // Each task's mean over its binary tasks first, then the mean over tasks (SAEBench averages
  // per dataset, then across datasets).
  std::vector<BinaryProbe> means;
  for (const auto& t : tasks) {
    BinaryProbe m;
    const double n = double(t.binary.size());
    for (const auto& b : t.binary) {
      m.llm_test_accuracy += b.llm_test_accuracy / n;
      for (const std::int64_t k : opts.k) {
        m.llm_top_k[k] += b.llm_top_k.at(k) / n;
        m.sae_top_k[k] += b.sae_top_k.at(k) / n;
      }
    }
    means.push_back(std::move(m));
  }
  std::vector<const BinaryProbe*> ptrs;
  for (const auto& m : means) ptrs.push_back(&m);
  if (ptrs.empty()) return nlohmann::json::object();
  return accuracies(ptrs, opts.k);
}

}  // namespace saelab::metrics
