// The standard evaluator and the ground-truth metrics against SAELens's own evaluation code
// (sae-lens 6.54.12, sae_lens/evals.py and sae_lens/synthetic/evals.py, run unchanged by
// saelens_evals_oracle.py on the same fake model, SAE and sequences). Needs SAELAB_SAELENS_PYTHON.
#include <cmath>
#include <cstdio>

#include <gtest/gtest.h>

#include "fakes.hpp"
#include "plugins.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/eval/recovery.hpp"
#include "saelab/formats/safetensors.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "support/support.hpp"

using namespace saelab;
using namespace saelab::test;

namespace {

constexpr std::int64_t kD = 6, kSeqs = 12;

CorpusConfig corpus(const std::string& path) {
  CorpusConfig c;
  c.paths = {path};
  c.format = "text";
  c.context_size = 16;
  c.prepend_bos = true;
  return c;
}

// Sparse non-negative [n, m] with about a third of the entries non-zero.
torch::Tensor sparse_codes(std::int64_t n, std::int64_t m) {
  return torch::rand({n, m}).mul(torch::rand({n, m}).lt(0.35));
}

nlohmann::json run_oracle(const fs::path& tensors, const fs::path& out) {
  const fs::path python = saelens_python();
  const fs::path evals_copy = python.parent_path().parent_path() / "sae-lens-6.54";
  const std::string script = std::string(SAELAB_SOURCE_DIR) + "/tests/report/saelens_evals_oracle.py";
  auto r = run_command("PYTHONPATH=" + shell_quote(evals_copy.string()) + " " + shell_quote(python.string()) +
                       " " + shell_quote(script) + " " + shell_quote(tensors.string()) + " " +
                       shell_quote(out.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(read_bytes(out));
}

}  // namespace

TEST(SaeLensEvals, EveryMetricBothDefineAgrees) {
  torch::manual_seed(11);
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  const auto path = write_corpus("c.txt", corpus_text(3000));
  TokenBatches tokens(corpus(path), src);
  EvalContext ctx{*sae, &src, kResidHook, &tokens, nullptr, 1.0, {}};
  auto ours = make_plugin<Evaluator>("standard", {{"batches", std::int64_t(1)}, {"batch_size", kSeqs}})
                  ->evaluate(ctx);
  ASSERT_EQ(ours["counts"]["sequences"], kSeqs);

  auto truth = torch::randn({8, kD});
  auto gt_coefficients = sparse_codes(300, 8), gt_latents = sparse_codes(300, 20);
  auto dict = metrics::dictionary_recovery(truth, sae->decoder_weight());
  metrics::ClassificationAccumulator classify(dict.best_feature);
  classify.add(gt_coefficients, gt_latents);
  const auto cls = classify.result();

  TempDir dir("oracle");
  auto state = sae->state();
  auto tensors = src.weights();
  tensors["tokens"] = TokenBatches(corpus(path), src).next(kSeqs);
  for (const char* k : {"W_enc", "b_enc", "W_dec", "b_dec"}) tensors[k] = state.at(k).detach();
  tensors["true_features"] = truth;
  tensors["gt_coefficients"] = gt_coefficients;
  tensors["gt_latents"] = gt_latents;
  safetensors::save(dir / "in.safetensors", tensors);
  auto theirs = run_oracle(dir / "in.safetensors", dir / "out.json");

  const auto& rec = ours["reconstruction"];
  const auto& sp = ours["sparsity"];
  const auto& dn = ours["downstream"];
  const std::pair<const char*, double> pairs[] = {
      {"explained_variance", rec["explained_variance"]},
      {"mse", rec["mse"]},
      {"cossim", rec["cosine_similarity"]},
      {"l2_norm_in", rec["l2_norm_in"]},
      {"l2_norm_out", rec["l2_norm_out"]},
      {"l2_ratio", rec["l2_ratio"]},
      {"relative_reconstruction_bias", rec["relative_reconstruction_bias"]},
      {"l0", sp["l0"]},
      {"l1", sp["l1"]},
      {"ce_loss_without_sae", dn["ce_loss_clean"]},
      {"ce_loss_with_sae", dn["ce_loss_spliced"]},
      {"ce_loss_with_ablation", dn["ce_loss_ablated"]},
      {"ce_loss_score", dn["ce_loss_score"]},
      {"kl_div_with_sae", dn["kl_div_spliced"]},
      {"kl_div_with_ablation", dn["kl_div_ablated"]},
      {"kl_div_score", dn["kl_div_score"]},
      {"mcc", dict.mcc},
      {"uniqueness", dict.uniqueness},
      {"precision", cls.precision},
      {"recall", cls.recall},
      {"f1", cls.f1},
      {"accuracy", cls.accuracy}};
  double worst = 0;
  for (const auto& [key, value] : pairs) {
    ASSERT_TRUE(theirs.contains(key)) << key;
    const double want = theirs[key].get<double>();
    const double rel = std::fabs(value - want) / std::max(1.0, std::fabs(want));
    worst = std::max(worst, rel);
    std::printf("  %-30s saelab %-14.8g SAELens %-14.8g |diff| %.3g\n", key, value, want,
                std::fabs(value - want));
    EXPECT_LT(rel, 1e-5) << key << ": saelab " << value << ", SAELens " << want;
  }
  // Per-latent density: SAELens's feature_density against fire_counts / tokens.
  const auto tokens_evaluated = ours["counts"]["tokens_evaluated"].get<double>();
  const auto& density = theirs["feature_density"];
  ASSERT_EQ(density.size(), sp["fire_counts"].size());
  for (std::size_t i = 0; i < density.size(); ++i)
    EXPECT_NEAR(sp["fire_counts"][i].get<double>() / tokens_evaluated, density[i].get<double>(), 1e-7)
        << i;  // SAELens counts in float32
  std::printf("SAELens 6.54.12 evals vs saelab: %zu metrics and %zu densities, max relative diff %.3g\n",
              std::size(pairs), density.size(), worst);
}
