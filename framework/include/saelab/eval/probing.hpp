#pragma once
// Sparse probing, SAEBench's method (sae_bench/evals/sparse_probing, probe_training.py): can a
// handful of latents tell the classes of a labelled dataset apart as well as the model's own
// activations can?
//
// Data: one row per sequence, its SAE latents and its model activations mean-pooled over the
// sequence's evaluated positions; every row belongs to a group (the document it came from) and
// carries that document's class. Train and test are split by group, never by row, so that no
// document is on both sides; the split is stratified by class (test_fraction of each class's
// documents, at least one where a class has two or more).
//
// Binary tasks: a task with two classes is one binary task (the first class in byte order is
// positive); a task with more is one task per class, that class against the rest. Each side of
// each binary task is balanced as SAEBench's prepare_probe_data balances it: all positives, and
// as many negatives drawn evenly from the other classes (when negatives are fewer, positives are
// drawn down to their number), so chance accuracy is 0.5.
//
// Per binary task, on the balanced training rows:
//   top-k selection   the k columns with the largest |mean(positives) − mean(negatives)|
//                     (SAEBench get_top_k_mean_diff_mask), ties to the lower index;
//   probe             sklearn's LogisticRegression(penalty="l2", C=1) objective, which SAEBench
//                     fits: 0.5‖w‖² + C Σ_i log(1 + exp(−s_i (w·x_i + b))), s_i = ±1, intercept b
//                     not penalized; solved here by Newton's method in float64;
//   accuracy          on the balanced test rows, predicting positive where w·x + b > 0.
// Reported per binary task and averaged over them: llm_test_accuracy (all model dimensions),
// llm_top_{k}_test_accuracy and sae_top_{k}_test_accuracy, the names SAEBench's eval output uses.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab::metrics {

struct SAELAB_API LogisticFit {
  torch::Tensor weight;  // [k] float64
  double bias = 0;
  std::int64_t iterations = 0;
  double gradient_norm = 0;  // max |∂objective| at the solution
};

// x [n, k] (any float dtype), positive [n] bool -> the minimizer of the objective above.
SAELAB_API LogisticFit fit_logistic(const torch::Tensor& x, const torch::Tensor& positive, double C = 1.0);
// Share of rows whose prediction (w·x + b > 0) equals positive.
SAELAB_API double logistic_accuracy(const LogisticFit& fit, const torch::Tensor& x,
                                    const torch::Tensor& positive);
// The k columns of x [n, d] with the largest |mean over positive rows − mean over the others|, by
// that difference descending (ties: lower index first): [min(k, d)] int64.
SAELAB_API torch::Tensor top_k_by_mean_difference(const torch::Tensor& x, const torch::Tensor& positive,
                                                  std::int64_t k);

struct SAELAB_API ProbeRows {
  torch::Tensor sae;                // [n, d_sae] mean-pooled latents
  torch::Tensor model;              // [n, d_in] mean-pooled model activations
  std::vector<std::int64_t> group;  // [n] each row's document
  std::vector<std::string> label;   // [n] each row's class
};

struct SAELAB_API ProbeOptions {
  std::vector<std::int64_t> k = {1, 2, 5, 10, 20};
  double test_fraction = 0.2;
  std::uint64_t seed = 0;
  double C = 1.0;
};

struct SAELAB_API BinaryProbe {
  std::string positive, negative;  // negative: the other class, or "rest"
  std::int64_t train_rows = 0, test_rows = 0;
  double llm_test_accuracy = 0;
  std::map<std::int64_t, double> llm_top_k, sae_top_k;  // k -> test accuracy
  std::vector<std::int64_t> top_latents;                // the largest k's selection, best first
};

struct SAELAB_API ProbeTask {
  std::string name;
  std::map<std::string, std::int64_t> documents;  // class -> documents
  std::int64_t train_documents = 0, test_documents = 0;
  std::vector<BinaryProbe> binary;
};

// Split by document, balance, select and fit, as described at the top. Throws when a task has
// fewer than two classes or a class too few documents to appear on both sides.
SAELAB_API ProbeTask sparse_probe(const std::string& name, const ProbeRows& rows, const ProbeOptions& opts);
SAELAB_API nlohmann::json probe_json(const ProbeTask& task);
// Means over every binary task of every task, under SAEBench's metric names.
SAELAB_API nlohmann::json probe_summary_json(const std::vector<ProbeTask>& tasks, const ProbeOptions& opts);

}  // namespace saelab::metrics
