// Evaluator "standard" on a fake linear model: planted truths (an exactly reconstructing SAE scores
// EV 1 and CE score 1, a zero SAE scores CE 0) and a brute-force recomputation of every metric.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <cstdio>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "fakes.hpp"
#include "plugins.hpp"
#include "support/support.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/interfaces/eval_cache.hpp"
#include "saelab/interfaces/evaluator.hpp"

using namespace saelab;
using namespace saelab::test;

namespace {

constexpr std::int64_t kD = 6;
constexpr std::int64_t kContext = 16;

CorpusConfig corpus_config(const std::string& path) {
  CorpusConfig c;
  c.paths = {path};
  c.format = "text";
  c.context_size = kContext;
  c.prepend_bos = true;
  return c;
}

nlohmann::json evaluate(FakeSource& src, SaeArchitecture& sae, const std::string& corpus,
                        std::map<std::string, OptionValue> opts = {}, const RowFilter& rows = {}) {
  TokenBatches tokens(corpus_config(corpus), src);
  EvalContext ctx{sae, &src, kResidHook, &tokens, nullptr, 1.0, rows};
  return make_plugin<Evaluator>("standard", opts)->evaluate(ctx);
}

// Every metric recomputed directly from the definitions over the same sequences.
struct BruteForce {
  double ev, mse, cos, l0, ce_clean, ce_spliced, ce_ablated, kl;
  std::int64_t tokens, dead;
};

BruteForce brute_force(FakeSource& src, TestSae& sae, const std::string& corpus, std::int64_t seqs,
                       const RowFilter& rows = {}) {
  torch::NoGradGuard ng;
  TokenBatches tb(corpus_config(corpus), src);
  auto tokens = tb.next(seqs);
  auto h = src.activations(tokens);                                  // [b, s, d]
  auto mask = tokens.ne(0).logical_and(rows_to_keep(tokens, rows));  // BOS and filtered rows excluded
  auto x = h.reshape({-1, kD}).index_select(0, mask.reshape({-1}).nonzero().squeeze(1)).to(torch::kFloat64);
  auto lat = sae.encode(x.to(torch::kFloat32)).to(torch::kFloat64);
  auto xh = sae.decode(lat.to(torch::kFloat32)).to(torch::kFloat64);
  BruteForce b{};
  b.tokens = x.size(0);
  b.ev = 1.0 - (x - xh).pow(2).sum().item<double>() / (x - x.mean(0)).pow(2).sum().item<double>();
  b.mse = (x - xh).pow(2).sum(1).mean().item<double>();  // per token, summed over d (SAELens)
  b.cos = ((x * xh).sum(1) / (x.norm(2, 1) * xh.norm(2, 1))).mean().item<double>();
  b.l0 = lat.ne(0).sum(1).to(torch::kFloat64).mean().item<double>();
  b.dead = lat.ne(0).sum(0).eq(0).sum().item<std::int64_t>();
  auto recon_full = sae.decode(sae.encode(h.reshape({-1, kD}))).view(h.sizes());
  auto spliced_h = at::where(mask.unsqueeze(-1), recon_full, h);
  auto clean = src.readout(tokens, h), spliced = src.readout(tokens, spliced_h),
       ablated = src.readout(tokens, torch::zeros_like(h));
  auto ce_mask = mask.narrow(1, 0, kContext - 1);
  auto mean_ce = [&](const torch::Tensor& l) {
    return l.to(torch::kFloat64).masked_select(ce_mask).mean().item<double>();
  };
  b.ce_clean = mean_ce(clean.loss);
  b.ce_spliced = mean_ce(spliced.loss);
  b.ce_ablated = mean_ce(ablated.loss);
  auto p = at::softmax(clean.logits.to(torch::kFloat64), -1);
  auto q = at::softmax(spliced.logits.to(torch::kFloat64), -1);
  b.kl = (p * (p.log() - q.log())).sum(-1).masked_select(mask).mean().item<double>();
  return b;
}

}  // namespace

TEST(Evaluator, IdentitySaeScoresPerfectly) {
  FakeSource src(kD);
  auto sae = identity_sae(kD);
  auto corpus = write_corpus("c.txt", corpus_text(2000));
  auto j = evaluate(src, *sae, corpus, {{"batches", std::int64_t(3)}, {"batch_size", std::int64_t(4)}});
  std::printf("identity SAE: EV %.12f  CE score %.12f  KL %.3g\n",
              j["reconstruction"]["explained_variance"].get<double>(),
              j["downstream"]["ce_loss_score"].get<double>(),
              j["downstream"]["kl_div_spliced"].get<double>());
  EXPECT_EQ(j["mode"], "spliced");
  EXPECT_NEAR(j["reconstruction"]["explained_variance"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["reconstruction"]["cosine_similarity"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["reconstruction"]["relative_reconstruction_bias"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["downstream"]["ce_loss_score"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["downstream"]["kl_div_spliced"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(j["summary"]["ce_loss_score"].get<double>(), 1.0, 1e-9);
  // relu(x) and relu(−x): exactly one of each pair fires per non-zero coordinate.
  EXPECT_NEAR(j["sparsity"]["l0"].get<double>(), double(kD), 1e-12);
  // 3 batches × 4 sequences × 16 positions, one BOS per sequence left out.
  EXPECT_EQ(j["counts"]["sequences"], 12);
  EXPECT_EQ(j["counts"]["tokens_evaluated"], 12 * 15);
  EXPECT_EQ(j["counts"]["positions_excluded"], 12);
  EXPECT_EQ(j["sparsity"]["fire_counts"].size(), std::size_t(2 * kD));
}

TEST(Evaluator, ZeroSaeScoresLikeAblation) {
  FakeSource src(kD);
  auto sae = zero_sae(kD, 10);
  auto corpus = write_corpus("c.txt", corpus_text(2000));
  auto j = evaluate(src, *sae, corpus, {{"batches", std::int64_t(2)}});
  std::printf("zero SAE: CE score %.3g\n", j["downstream"]["ce_loss_score"].get<double>());
  EXPECT_NEAR(j["downstream"]["ce_loss_score"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(j["downstream"]["kl_div_score"].get<double>(), 0.0, 1e-9);
  EXPECT_EQ(j["sparsity"]["dead_latents"], 10);
  EXPECT_EQ(j["sparsity"]["l0"].get<double>(), 0.0);
  EXPECT_TRUE(j["sparsity"]["log10_feature_density_mean_alive"].is_null());
}

// With the harvest's row filter (here: the first 3 positions and one frequent token left out), those
// positions are neither measured nor spliced, exactly as the brute force leaves them.
class EvaluatorFiltered : public ::testing::TestWithParam<bool> {};

TEST_P(EvaluatorFiltered, RandomSaeMatchesBruteForce) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  RowFilter rows;
  if (GetParam()) {
    TokenBatches tb(corpus_config(corpus), src);
    rows.first_position = 3;
    rows.excluded_tokens = {static_cast<std::int32_t>(tb.next(1)[0][5].item<std::int64_t>())};
  }
  auto j = evaluate(src, *sae, corpus, {{"batches", std::int64_t(4)}, {"batch_size", std::int64_t(3)}}, rows);
  auto b = brute_force(src, *sae, corpus, 12, rows);
  if (GetParam()) {
    EXPECT_LT(b.tokens, 12 * 13);  // at least one excluded token besides the positions
  }
  const auto& r = j["reconstruction"];
  const auto& d = j["downstream"];
  const double score = (b.ce_ablated - b.ce_spliced) / (b.ce_ablated - b.ce_clean);
  const double diffs[] = {std::fabs(r["explained_variance"].get<double>() - b.ev),
                          std::fabs(r["mse"].get<double>() - b.mse),
                          std::fabs(r["cosine_similarity"].get<double>() - b.cos),
                          std::fabs(j["sparsity"]["l0"].get<double>() - b.l0),
                          std::fabs(d["ce_loss_clean"].get<double>() - b.ce_clean),
                          std::fabs(d["ce_loss_spliced"].get<double>() - b.ce_spliced),
                          std::fabs(d["ce_loss_ablated"].get<double>() - b.ce_ablated),
                          std::fabs(d["ce_loss_score"].get<double>() - score),
                          std::fabs(d["kl_div_spliced"].get<double>() - b.kl)};
  double max_diff = 0;
  for (double x : diffs) max_diff = std::max(max_diff, x);
  std::printf("random SAE vs brute force: EV %.6f L0 %.4f CE score %.6f KL %.6f; max |diff| %.3g\n", b.ev,
              b.l0, score, b.kl, max_diff);
  for (double x : diffs) EXPECT_LT(x, 1e-5);
  EXPECT_EQ(j["counts"]["tokens_evaluated"].get<std::int64_t>(), b.tokens);
  EXPECT_EQ(j["sparsity"]["dead_latents"].get<std::int64_t>(), b.dead);
  EXPECT_GT(b.l0, 0.5);  // the planted SAE really is sparse but alive
  EXPECT_LT(b.l0, 19.5);
}

INSTANTIATE_TEST_SUITE_P(Evaluator, EvaluatorFiltered, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "HarvestRowFilter" : "AllPositions"; });

TEST(Evaluator, StoredActivationsGiveNullCeWithReason) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  TokenBatches tb(corpus_config(corpus), src);
  auto tokens = tb.next(5);
  auto x = src.activations(tokens).reshape({-1, kD});
  const std::int64_t n = x.size(0);
  ActivationRows rows{x, tokens.reshape({-1}).to(torch::kInt32),
                      torch::arange(n, torch::kInt64).div(kContext, "floor"),
                      torch::arange(n, torch::kInt64).remainder(kContext).to(torch::kInt32)};
  FakeReader reader(rows, 32);
  EvalContext ctx{*sae, nullptr, kResidHook, nullptr, &reader, 1.0, {}};
  auto j = make_plugin<Evaluator>("standard", {{"batches", std::int64_t(100)}})->evaluate(ctx);
  EXPECT_EQ(j["mode"], "stored_activations");
  EXPECT_TRUE(j["downstream"]["ce_loss_score"].is_null());
  EXPECT_TRUE(j["summary"]["ce_loss_score"].is_null());
  EXPECT_NE(j["downstream"]["reason"].get<std::string>().find("no model"), std::string::npos);
  // Capped at one epoch: 80 rows, never the wrapped-around ones twice.
  EXPECT_EQ(j["counts"]["tokens_evaluated"], n);
  torch::NoGradGuard ng;
  auto xh = sae->decode(sae->encode(x)).to(torch::kFloat64);
  auto xd = x.to(torch::kFloat64);
  double ev = 1.0 - (xd - xh).pow(2).sum().item<double>() / (xd - xd.mean(0)).pow(2).sum().item<double>();
  std::printf("stored rows: EV %.8f vs brute force %.8f\n",
              j["reconstruction"]["explained_variance"].get<double>(), ev);
  EXPECT_NEAR(j["reconstruction"]["explained_variance"].get<double>(), ev, 1e-6);
}

TEST(Evaluator, InputScaleIsUndone) {
  // An SAE trained on inputs ×2 reconstructs raw x exactly when the evaluator scales in and out.
  FakeSource src(kD);
  auto sae = identity_sae(kD);
  auto corpus = write_corpus("c.txt", corpus_text(1500));
  TokenBatches tokens(corpus_config(corpus), src);
  EvalContext ctx{*sae, &src, kResidHook, &tokens, nullptr, 2.0, {}};
  auto j = make_plugin<Evaluator>("standard", {{"batches", std::int64_t(1)}})->evaluate(ctx);
  EXPECT_NEAR(j["reconstruction"]["explained_variance"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["reconstruction"]["l2_ratio"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(j["input_scale"].get<double>(), 2.0);
}

TEST(Evaluator, ErrorsNameTheHookAndTheAllowedValues) {
  FakeSource src(kD);
  auto sae = identity_sae(kD);
  auto corpus = write_corpus("c.txt", corpus_text(500));
  TokenBatches tokens(corpus_config(corpus), src);
  auto ev = make_plugin<Evaluator>("standard", {});
  EvalContext bad_hook{*sae, &src, "blocks.9.hook_resid_post", &tokens, nullptr, 1.0, {}};
  try {
    ev->evaluate(bad_hook);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("blocks.9.hook_resid_post"), std::string::npos) << m;
    EXPECT_NE(m.find(kResidHook), std::string::npos) << m;  // lists the available hooks
  }
  auto wide = identity_sae(kD + 1);
  EvalContext bad_width{*wide, &src, kResidHook, &tokens, nullptr, 1.0, {}};
  try {
    ev->evaluate(bad_width);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("width 6"), std::string::npos) << m;
    EXPECT_NE(m.find("d_in is 7"), std::string::npos) << m;
  }
  EvalContext nothing{*sae, nullptr, kResidHook, nullptr, nullptr, 1.0, {}};
  try {
    ev->evaluate(nothing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing to evaluate"), std::string::npos) << e.what();
  }
}

// One batch of all 12 sequences, so the evaluator's per-batch mean is the mean over every evaluated
// position: mean ablation, the SAE-plus-error-term run and the dictionary geometry recomputed here.
TEST(Evaluator, MeanAblationErrorTermAndGeometryMatchBruteForce) {
  torch::NoGradGuard ng;
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  auto j = evaluate(src, *sae, corpus, {{"batches", std::int64_t(1)}, {"batch_size", std::int64_t(12)}});
  auto b = brute_force(src, *sae, corpus, 12);

  TokenBatches tb(corpus_config(corpus), src);
  auto tokens = tb.next(12);
  auto h = src.activations(tokens);  // [b, s, d]
  auto mask = tokens.ne(0);
  auto x = h.reshape({-1, kD}).index_select(0, mask.reshape({-1}).nonzero().squeeze(1));
  auto mean_ablated = src.readout(tokens, x.mean(0).expand_as(h).clone());
  auto ce_mask = mask.narrow(1, 0, kContext - 1);
  const double ce_mean = mean_ablated.loss.to(torch::kFloat64).masked_select(ce_mask).mean().item<double>();

  auto dec = sae->decoder_weight().to(torch::kFloat64);  // [20, d]
  double sum_max = 0;
  for (std::int64_t i = 0; i < dec.size(0); ++i) {
    double best = -2;
    for (std::int64_t k = 0; k < dec.size(0); ++k)
      if (k != i)
        best = std::max(best, (dec[i].dot(dec[k]) / (dec[i].norm() * dec[k].norm())).item<double>());
    sum_max += best;
  }

  const auto& d = j["downstream"];
  const double diffs[] = {std::fabs(d["ce_loss_mean_ablated"].get<double>() - ce_mean),
                          std::fabs(d["ce_loss_score_mean_ablation"].get<double>() -
                                    (ce_mean - b.ce_spliced) / (ce_mean - b.ce_clean)),
                          std::fabs(d["ce_loss_with_error_term"].get<double>() - b.ce_clean),
                          std::fabs(j["geometry"]["average_max_decoder_cosine_sim"].get<double>() -
                                    sum_max / double(dec.size(0)))};
  std::printf(
      "mean ablation CE %.6f (brute force %.6f); error term: CE %.9f vs clean %.9f, max |diff| "
      "per position %.3g; max |diff| of the four: %.3g\n",
      d["ce_loss_mean_ablated"].get<double>(), ce_mean, d["ce_loss_with_error_term"].get<double>(),
      b.ce_clean, d["error_term_max_abs_ce_diff"].get<double>(),
      *std::max_element(std::begin(diffs), std::end(diffs)));
  for (double diff : diffs) EXPECT_LT(diff, 1e-5);
  EXPECT_LT(d["error_term_max_abs_ce_diff"].get<double>(), 1e-5);
  EXPECT_GT(std::fabs(ce_mean - b.ce_ablated), 0.01);  // mean and zero ablation really differ here
}

// A sweep's later runs take the clean and ablated model runs from the cache: the same figures as
// computing them, and nothing reused for other tokens.
TEST(Evaluator, CachedModelRunsGiveTheSameFigures) {
  FakeSource src(kD);
  auto first = random_sae(kD, 20, 7), second = random_sae(kD, 20, 8);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  const auto other =
      (saelab::test::scratch_dir("other") / "other.txt").string();  // write_corpus's folder holds one file
  saelab::test::write_bytes(other, "shifted by a prefix " + corpus_text(2000));
  const std::map<std::string, OptionValue> opts = {{"batches", std::int64_t(2)},
                                                   {"batch_size", std::int64_t(4)}};
  EvalCache cache;
  const auto with_cache = [&](SaeArchitecture& sae, const std::string& path) {
    TokenBatches tokens(corpus_config(path), src);
    EvalContext ctx{sae, &src, kResidHook, &tokens, nullptr, 1.0, {}};
    ctx.cache = &cache;
    return make_plugin<Evaluator>("standard", opts)->evaluate(ctx);
  };
  const auto a = with_cache(*first, corpus);
  const auto b = with_cache(*second, corpus);
  const auto fresh = evaluate(src, *second, corpus, opts);
  EXPECT_EQ(a["counts"]["model_runs_reused"], 0);
  EXPECT_EQ(b["counts"]["model_runs_reused"], 2 * 3);  // clean, zero- and mean-ablated, per batch
  double worst = 0;
  for (const char* key : {"ce_loss_clean", "ce_loss_spliced", "ce_loss_ablated", "ce_loss_mean_ablated",
                          "ce_loss_score", "kl_div_spliced", "kl_div_ablated", "ce_loss_with_error_term"})
    worst = std::max(worst,
                     std::fabs(b["downstream"][key].get<double>() - fresh["downstream"][key].get<double>()));
  std::printf("cached against computed model runs: max |diff| of the downstream metrics %.3g\n", worst);
  EXPECT_EQ(worst, 0.0);
  EXPECT_NE(b["downstream"]["ce_loss_spliced"], a["downstream"]["ce_loss_spliced"]);  // the SAEs differ
  EXPECT_EQ(with_cache(*second, other)["counts"]["model_runs_reused"], 0);
}
