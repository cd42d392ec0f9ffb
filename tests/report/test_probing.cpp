// Sparse probing: the logistic probe against its own optimality conditions, top-k selection by
// hand, planted labels (one latent carries the class, another carries nothing), a split that must
// keep documents apart, and the evaluator reading labels from corpus file names.
#include <cstdio>
#include <random>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "fakes.hpp"
#include "plugins.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/eval/probing.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "support/support.hpp"

using namespace saelab;
using namespace saelab::test;

namespace {

torch::Tensor randn(std::vector<std::int64_t> shape, std::uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, g, torch::kFloat64);
}

// Rows of `docs` documents, `per_doc` rows each, classes assigned round-robin.
metrics::ProbeRows rows_by_document(std::int64_t docs, std::int64_t per_doc,
                                    const std::vector<std::string>& classes) {
  metrics::ProbeRows r;
  for (std::int64_t d = 0; d < docs; ++d)
    for (std::int64_t i = 0; i < per_doc; ++i) {
      r.group.push_back(d);
      r.label.push_back(classes[std::size_t(d) % classes.size()]);
    }
  return r;
}

torch::Tensor positive_of(const metrics::ProbeRows& r, const std::string& cls) {
  std::vector<std::uint8_t> v;
  for (const auto& l : r.label) v.push_back(l == cls);
  return torch::tensor(v, torch::kUInt8).to(torch::kBool);
}

}  // namespace

TEST(Probing, LogisticFitSatisfiesItsOptimalityConditions) {
  // At the minimum of 0.5‖w‖² + C Σ log(1 + exp(−s (w·x + b))): w = C Σ s σ(−s m) x, Σ s σ(−s m) = 0.
  const auto x = randn({200, 5}, 3);
  const auto w_true = torch::tensor({1.5, -2.0, 0.0, 0.7, 3.0}, torch::kFloat64);
  const auto noise = randn({200}, 4);
  const auto positive = (at::matmul(x, w_true) + 0.3 + noise).gt(0);
  for (const double C : {1.0, 0.05}) {
    const auto fit = metrics::fit_logistic(x.to(torch::kFloat32), positive, C);
    const auto s = positive.to(torch::kFloat64) * 2 - 1;
    const auto m = s * (at::matmul(x.to(torch::kFloat32).to(torch::kFloat64), fit.weight) + fit.bias);
    const auto r = s * at::sigmoid(-m);
    const double dw =
        max_abs_diff(fit.weight, C * at::matmul(x.to(torch::kFloat32).to(torch::kFloat64).t(), r));
    const double db = std::abs(r.sum().item<double>());
    std::printf("logistic C=%g: %lld Newton steps, KKT residual weights %.3g intercept %.3g\n", C,
                static_cast<long long>(fit.iterations), dw, db);
    EXPECT_LT(dw, 1e-8);
    EXPECT_LT(db, 1e-8);
    EXPECT_GT(metrics::logistic_accuracy(fit, x, positive), 0.8);
  }
  // A strong penalty shrinks the weights: smaller norm at C = 0.05 than at C = 1.
  EXPECT_LT(metrics::fit_logistic(x, positive, 0.05).weight.norm().item<double>(),
            metrics::fit_logistic(x, positive, 1.0).weight.norm().item<double>());
}

TEST(Probing, TopKByMeanDifferenceByHand) {
  // Columns' |mean(pos) − mean(neg)|: 1, 4, 0, 4 (tie between 1 and 3: lower index first), 2.
  const auto x = torch::tensor({{1.0, 5.0, 2.0, 0.0, 3.0},  // positive
                                {1.0, 3.0, 2.0, 0.0, 1.0},  // positive
                                {0.0, 0.0, 2.0, 4.0, 0.0},
                                {0.0, 0.0, 2.0, 4.0, 0.0}});
  const auto positive = torch::tensor({1, 1, 0, 0}, torch::kUInt8).to(torch::kBool);
  const auto top = metrics::top_k_by_mean_difference(x, positive, 3);
  ASSERT_EQ(top.size(0), 3);
  EXPECT_EQ(top[0].item<std::int64_t>(), 1);
  EXPECT_EQ(top[1].item<std::int64_t>(), 3);
  EXPECT_EQ(top[2].item<std::int64_t>(), 4);
  EXPECT_EQ(metrics::top_k_by_mean_difference(x, positive, 50).size(0), 5);
}

TEST(Probing, PlantedLatentIsFoundAndAnEmptyOneScoresChance) {
  auto r = rows_by_document(60, 4, {"a", "b"});
  const auto n = std::int64_t(r.group.size());
  const auto pos = positive_of(r, "a").to(torch::kFloat64);
  auto sae = randn({n, 30}, 11).abs();  // 30 latents of noise...
  sae.select(1, 17) += 3.0 * pos;       // ...and latent 17 carries the class
  r.sae = sae;
  r.model = randn({n, 8}, 12) + pos.unsqueeze(1) * 1.5;
  metrics::ProbeOptions opts;
  opts.k = {1, 5};
  const auto task = metrics::sparse_probe("planted", r, opts);
  ASSERT_EQ(task.binary.size(), 1u);
  const auto& b = task.binary[0];
  std::printf("planted: sae top-1 %.3f (latent %lld), top-5 %.3f, llm %.3f; %lld/%lld train/test rows\n",
              b.sae_top_k.at(1), static_cast<long long>(b.top_latents[0]), b.sae_top_k.at(5),
              b.llm_test_accuracy, static_cast<long long>(b.train_rows), static_cast<long long>(b.test_rows));
  EXPECT_EQ(b.top_latents[0], 17);
  EXPECT_GE(b.sae_top_k.at(1), 0.95);
  EXPECT_GE(b.llm_test_accuracy, 0.9);
  EXPECT_EQ(task.train_documents + task.test_documents, 60);
  EXPECT_EQ(task.test_documents, 12);  // 20% of each class's 30 documents

  // The same rows with the carrying latent removed: nothing left to find.
  r.sae = at::cat({sae.narrow(1, 0, 17), sae.narrow(1, 18, 12)}, 1);
  const auto blind = metrics::sparse_probe("blind", r, opts).binary[0];
  std::printf("no carrying latent: sae top-1 %.3f\n", blind.sae_top_k.at(1));
  EXPECT_NEAR(blind.sae_top_k.at(1), 0.5, 0.15);
}

TEST(Probing, SplitKeepsDocumentsApart) {
  // Labels are random per document and each document's rows share one random signature: a probe
  // can only memorise documents. Split by document, it must score chance; a split by row (a
  // document on both sides) would score near 1.
  auto r = rows_by_document(80, 6, {"x"});
  std::mt19937_64 rng(5);
  std::vector<torch::Tensor> sig;
  for (std::int64_t d = 0; d < 80; ++d) sig.push_back(randn({1, 40}, 100 + std::uint64_t(d)).expand({6, 40}));
  for (std::size_t i = 0; i < r.label.size(); i += 6) {
    const std::string cls = (rng() & 1) ? "p" : "q";
    for (std::size_t j = 0; j < 6; ++j) r.label[i + j] = cls;
  }
  r.model = at::cat(sig) + 0.01 * randn({480, 40}, 7);
  r.sae = r.model.abs();
  const auto b = metrics::sparse_probe("memorise", r, {}).binary[0];
  std::printf("document-memorising probe on held-out documents: llm %.3f\n", b.llm_test_accuracy);
  EXPECT_NEAR(b.llm_test_accuracy, 0.5, 0.2);
}

TEST(Probing, OneAgainstRestIsBalancedPerClass) {
  auto r = rows_by_document(40, 3, {"17", "18", "18", "19", "19", "19", "20", "20"});
  const auto n = std::int64_t(r.group.size());
  r.sae = randn({n, 6}, 1).abs();
  r.model = randn({n, 4}, 2);
  metrics::ProbeOptions opts;
  opts.k = {2};
  const auto task = metrics::sparse_probe("century", r, opts);
  ASSERT_EQ(task.binary.size(), 4u);
  for (const auto& b : task.binary) {
    EXPECT_EQ(b.negative, "rest");
    EXPECT_EQ(b.train_rows % 2, 0) << b.positive;  // as many negatives as positives
    EXPECT_GT(b.test_rows, 0) << b.positive;
  }
  // "17": 5 documents, one held out -> 4·3 positive training rows, as many negatives.
  EXPECT_EQ(task.binary[0].positive, "17");
  EXPECT_EQ(task.binary[0].train_rows, 24);
  EXPECT_EQ(task.documents.at("19"), 15);
  const auto j = metrics::probe_json(task);
  EXPECT_TRUE(j["mean"].contains("sae_top_2_test_accuracy"));
  EXPECT_TRUE(j["mean"].contains("llm_top_2_test_accuracy"));
}

TEST(Probing, ErrorsNameTheTaskAndTheClass) {
  auto r = rows_by_document(5, 2, {"d"});
  r.sae = torch::zeros({10, 3});
  r.model = torch::zeros({10, 3});
  const auto one_class = error_of([&] { metrics::sparse_probe("party", r, {}); });
  std::printf("one class: %s\n", one_class.c_str());
  EXPECT_TRUE(contains(one_class, "task 'party'")) << one_class;
  EXPECT_TRUE(contains(one_class, "1 class ('d')")) << one_class;
  r.label[9] = r.label[8] = "r";  // one document of class r
  const auto lonely = error_of([&] { metrics::sparse_probe("party", r, {}); });
  std::printf("one document: %s\n", lonely.c_str());
  EXPECT_TRUE(contains(lonely, "class 'r' has 1 document")) << lonely;
}

namespace {

// Files named like the State of the Union corpus: class letter in the name, text biased to it.
void write_labelled_corpus(const TempDir& dir) {
  for (int i = 0; i < 10; ++i) {
    for (const char cls : {'d', 'r'}) {
      std::string text;
      std::mt19937 rng(unsigned(i * 2 + (cls == 'd')));
      for (int c = 0; c < 200; ++c)
        text += (rng() % 3 == 0) ? char('a' + rng() % 20) : (cls == 'd' ? 'x' : 'y');
      write_bytes(dir / cat(1900 + i, "_someone_", cls, ".txt"), text);
    }
  }
  write_bytes(dir / "1950_someone_w.txt", std::string(300, 'z'));  // in no party: not probed
}

}  // namespace

TEST(Probing, EvaluatorReadsLabelsFromFileNames) {
  TempDir dir("probing");
  write_labelled_corpus(dir);
  FakeSource src(6);
  auto sae = identity_sae(6);
  CorpusConfig corpus;
  corpus.paths = {dir.path()};
  corpus.context_size = 16;
  TokenBatches tokens(corpus, src);
  EvalContext ctx{*sae, &src, kResidHook, &tokens, nullptr, 1.0, {}};
  ctx.corpus = &corpus;
  const auto j =
      make_plugin<Evaluator>(
          "standard", {{"batches", std::int64_t(2)},
                       {"probe_tasks", std::vector<std::string>{"party: _(d|r)\\.txt$", "decade: ^19(\\d)"}},
                       {"probe_sequences_per_document", std::int64_t(3)},
                       {"probe_k", std::vector<std::string>{"1", "3"}}})
          ->evaluate(ctx);
  const auto& sp = j.at("sparse_probing");
  std::printf("party: sae top-1 %.3f, llm %.3f over %lld sequences\n",
              sp["tasks"]["party"]["mean"]["sae_top_1_test_accuracy"].get<double>(),
              sp["tasks"]["party"]["mean"]["llm_test_accuracy"].get<double>(),
              static_cast<long long>(sp["sequences"].get<std::int64_t>()));
  EXPECT_EQ(sp["documents"], 21);  // the 1950 file has a decade but no party
  EXPECT_EQ(sp["sequences"], 63);  // 200 and 300 bytes give at least 3 sequences of 15 tokens
  EXPECT_EQ(sp["tasks"]["party"]["classes"]["d"], 10);
  EXPECT_EQ(sp["tasks"]["party"]["test_documents"], 4);
  EXPECT_GE(sp["tasks"]["party"]["mean"]["sae_top_1_test_accuracy"].get<double>(), 0.9);
  EXPECT_GE(sp["tasks"]["party"]["mean"]["llm_test_accuracy"].get<double>(), 0.9);
  // Decade 5 has one document: that task is reported as an error, the rest of eval.json stands.
  EXPECT_TRUE(contains(sp["tasks"]["decade"].value("error", std::string()), "class '5' has 1 document"));
  EXPECT_EQ(sp["tasks"]["decade"]["pattern"], "^19(\\d)");
  EXPECT_TRUE(j["summary"].contains("sae_top_1_test_accuracy"));
  EXPECT_TRUE(j.contains("downstream"));
}

TEST(Probing, BadTaskOptionsSayWhatIsAllowed) {
  const auto nameless = error_of([] {
    make_plugin<Evaluator>("standard", {{"probe_tasks", std::vector<std::string>{"_(d|r)"}}});
  });
  std::printf("%s\n", nameless.c_str());
  EXPECT_TRUE(contains(nameless, "test.yaml:7")) << nameless;
  EXPECT_TRUE(contains(nameless, "name: regex")) << nameless;
  const auto bad_regex = error_of([] {
    make_plugin<Evaluator>("standard", {{"probe_tasks", std::vector<std::string>{"party: (d|r"}}});
  });
  std::printf("%s\n", bad_regex.c_str());
  EXPECT_TRUE(contains(bad_regex, "not a valid ECMAScript regular expression")) << bad_regex;
  const auto bad_k = error_of([] {
    make_plugin<Evaluator>("standard", {{"probe_k", std::vector<std::string>{"2", "x"}}});
  });
  EXPECT_TRUE(contains(bad_k, "\"x\" is not a whole number")) << bad_k;
}
