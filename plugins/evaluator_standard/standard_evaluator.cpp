#include "standard_evaluator.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "saelab/data/corpus.hpp"
#include "saelab/core/error.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/eval/metrics.hpp"
#include "saelab/sae/apply.hpp"

namespace saelab {

OptionSchema standard_evaluator_schema() {
  OptionSchema s;
  s.integer("batches", 10,
            "Batches to evaluate: token batches, or stored-activation batches "
            "(capped at one epoch of the store)")
      .at_least(1);
  s.integer("batch_size", 8, "Sequences per token batch (spliced evaluation)").at_least(1);
  s.boolean("exclude_bos", true,
            "Leave positions holding the BOS token out of every metric "
            "(and keep their clean activation in the spliced run), as "
            "SAELens's evaluation does with ignore_tokens");
  s.boolean("per_latent", true, "Write each latent's firing count (d_sae integers) to eval.json");
  return s;
}

StandardEvalOptions standard_eval_options(const Options& o) {
  StandardEvalOptions r;
  r.batches = o.integer("batches");
  r.batch_size = o.integer("batch_size");
  r.exclude_bos = o.boolean("exclude_bos");
  r.per_latent = o.boolean("per_latent");
  return r;
}

namespace {

// Summary of the per-latent firing counts: dead latents and log10 feature density of the others.
nlohmann::json density_summary(const metrics::LatentFiringAccumulator& firing, bool per_latent) {
  const auto counts = firing.fire_counts().contiguous();
  const auto* c = counts.data_ptr<std::int64_t>();
  std::vector<double> alive;
  for (std::int64_t i = 0; i < counts.size(0); ++i)
    if (c[i] > 0) alive.push_back(metrics::log10_feature_density(c[i], firing.tokens()));
  nlohmann::json j;
  double mean = 0, median = 0;
  if (!alive.empty()) {
    for (double v : alive) mean += v;
    mean /= double(alive.size());
    std::sort(alive.begin(), alive.end());
    const std::size_t m = alive.size() / 2;
    median = alive.size() % 2 ? alive[m] : 0.5 * (alive[m - 1] + alive[m]);
  }
  j["log10_feature_density_mean_alive"] =
      alive.empty() ? nlohmann::json(nullptr) : metrics::json_number(mean);
  j["log10_feature_density_median_alive"] =
      alive.empty() ? nlohmann::json(nullptr) : metrics::json_number(median);
  if (per_latent) j["fire_counts"] = std::vector<std::int64_t>(c, c + counts.size(0));
  return j;
}

nlohmann::json downstream_unavailable(const std::string& reason) {
  return {{"ce_loss_score", nullptr},   {"ce_loss_clean", nullptr},  {"ce_loss_spliced", nullptr},
          {"ce_loss_ablated", nullptr}, {"kl_div_spliced", nullptr}, {"kl_div_ablated", nullptr},
          {"kl_div_score", nullptr},    {"reason", reason}};
}

nlohmann::json assemble(const std::string& mode, const EvalContext& ctx,
                        const metrics::ReconstructionAccumulator& recon,
                        const metrics::LatentFiringAccumulator& firing, nlohmann::json downstream,
                        nlohmann::json counts, bool per_latent) {
  auto rm = recon.result();
  auto sm = firing.result();
  nlohmann::json sparsity = sm.to_json();
  sparsity.update(density_summary(firing, per_latent));
  nlohmann::json j;
  j["evaluator"] = "standard";
  j["mode"] = mode;
  j["hook"] = ctx.hook;
  j["sae"] = {{"architecture", ctx.sae.architecture()},
              {"d_in", ctx.sae.shape().d_in},
              {"d_sae", ctx.sae.shape().d_sae}};
  j["input_scale"] = ctx.input_scale;
  j["units"] = "reconstruction metrics in raw activation units (input_scale undone)";
  j["summary"] = {{"explained_variance", metrics::json_number(rm.explained_variance)},
                  {"mse", metrics::json_number(rm.mse)},
                  {"cosine_similarity", metrics::json_number(rm.cosine_similarity)},
                  {"l0", metrics::json_number(sm.l0)},
                  {"dead_latents", sm.dead_latents},
                  {"ce_loss_score", downstream.value("ce_loss_score", nlohmann::json(nullptr))},
                  {"kl_div_spliced", downstream.value("kl_div_spliced", nlohmann::json(nullptr))}};
  if (downstream.contains("reason")) j["summary"]["ce_loss_score_reason"] = downstream["reason"];
  j["reconstruction"] = rm.to_json();
  j["sparsity"] = std::move(sparsity);
  j["downstream"] = std::move(downstream);
  j["counts"] = std::move(counts);
  return j;
}

// Positions to evaluate: [b, s] bool.
torch::Tensor position_mask(const torch::Tensor& tokens, std::int32_t bos, bool exclude_bos) {
  if (!exclude_bos || bos < 0) return torch::ones_like(tokens, torch::kBool);
  return tokens.ne(bos);
}

// KL per position, one sequence at a time so the float64 temporaries stay small: [b, s].
torch::Tensor kl_per_position(const torch::Tensor& clean, const torch::Tensor& other) {
  std::vector<torch::Tensor> rows;
  for (std::int64_t b = 0; b < clean.size(0); ++b) rows.push_back(metrics::kl_divergence(clean[b], other[b]));
  return torch::stack(rows);
}

void check_output(const ModelOutput& out, const torch::Tensor& tokens, const std::string& run,
                  const std::string& model) {
  const auto b = tokens.size(0), s = tokens.size(1);
  SAELAB_CHECK(
      out.loss.defined() && out.loss.dim() == 2 && out.loss.size(0) == b && out.loss.size(1) == s - 1, Error,
      "evaluator standard: model '", model, "' returned loss ",
      out.loss.defined() ? cat(out.loss.sizes()) : std::string("(undefined)"), " for the ", run,
      " run; expected [", b, ", ", s - 1, "]");
  SAELAB_CHECK(
      out.logits.defined() && out.logits.dim() == 3 && out.logits.size(0) == b && out.logits.size(1) == s,
      Error, "evaluator standard: model '", model, "' returned logits ",
      out.logits.defined() ? cat(out.logits.sizes()) : std::string("(undefined)"), " for the ", run,
      " run; expected [", b, ", ", s, ", vocab]");
}

}  // namespace

nlohmann::json StandardEvaluator::evaluate(EvalContext& ctx) {
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(ctx.sae);
  if (ctx.source && ctx.tokens) return evaluate_spliced(ctx);
  if (ctx.reader) {
    return evaluate_stored(ctx, ctx.source ? "no token sequences were given, so the SAE could not "
                                             "be spliced into the model"
                                           : "no model (activation source) was given, so the SAE "
                                             "could not be spliced into the model");
  }
  throw Error(cat("evaluator standard: nothing to evaluate on hook '", ctx.hook,
                  "': give a model and token sequences (spliced evaluation with CE metrics) or "
                  "stored activations (reconstruction and sparsity metrics only)"));
}

nlohmann::json StandardEvaluator::evaluate_spliced(EvalContext& ctx) {
  check_hook_width(*ctx.source, ctx.hook, ctx.sae.shape().d_in, "evaluator standard");
  auto& source = *ctx.source;
  const std::string model = source.info().model_id;
  const std::int64_t d_in = ctx.sae.shape().d_in;
  metrics::ReconstructionAccumulator recon;
  metrics::LatentFiringAccumulator firing(ctx.sae.shape().d_sae);
  metrics::DownstreamAccumulator down;
  std::int64_t batches = 0, sequences = 0, positions = 0;

  for (; batches < opts_.batches; ++batches) {
    torch::Tensor tokens = ctx.tokens->next(opts_.batch_size);
    if (tokens.size(0) == 0) break;
    tokens = tokens.to(source.device(), torch::kInt64);
    const auto mask = position_mask(tokens, source.info().bos_token, opts_.exclude_bos)
                          .logical_and(rows_to_keep(tokens.cpu(), ctx.rows).to(tokens.device()));
    const auto flat_rows = mask.reshape({-1}).nonzero().squeeze(1);

    auto clean = source.run_with_replacement(
        tokens, ctx.hook, [](const torch::Tensor& a) { return a; }, true);
    check_output(clean, tokens, "clean", model);

    std::optional<SaeApplied> applied;
    torch::Tensor x;
    auto splice = [&](const torch::Tensor& act) {
      SAELAB_CHECK(act.dim() == 3 && act.size(2) == d_in, Error, "evaluator standard: hook '", ctx.hook,
                   "' of model '", model, "' gave activations ", act.sizes(), "; expected [batch, seq, ",
                   d_in, "]");
      x = act.reshape({-1, d_in});
      applied = apply_sae(ctx.sae, x, ctx.input_scale);
      auto out = applied->reconstruction.view(act.sizes());
      return at::where(mask.to(act.device()).unsqueeze(-1), out, act);
    };
    auto spliced = source.run_with_replacement(tokens, ctx.hook, splice, true);
    check_output(spliced, tokens, "spliced", model);
    SAELAB_CHECK(applied.has_value(), Error, "evaluator standard: model '", model,
                 "' never called the replacement function for hook '", ctx.hook, "'");
    auto kl_spliced = kl_per_position(clean.logits, spliced.logits);
    spliced.logits = torch::Tensor();

    auto ablated = source.run_with_replacement(
        tokens, ctx.hook, [](const torch::Tensor& a) { return torch::zeros_like(a); }, true);
    check_output(ablated, tokens, "ablated", model);
    auto kl_ablated = kl_per_position(clean.logits, ablated.logits);

    const auto ce_mask = mask.narrow(1, 0, tokens.size(1) - 1);
    down.add_ce(clean.loss, spliced.loss, ablated.loss, ce_mask);
    down.add_kl(kl_spliced, kl_ablated, mask);

    const auto rows_dev = flat_rows.to(x.device());
    recon.add(x.index_select(0, rows_dev), applied->reconstruction.index_select(0, rows_dev));
    firing.add(applied->latents.index_select(0, flat_rows.to(applied->latents.device())));
    sequences += tokens.size(0);
    positions += tokens.numel();
  }
  SAELAB_CHECK(recon.tokens() > 0, Error, "evaluator standard: the token sequences for hook '", ctx.hook,
               "' were empty (", sequences,
               " sequences read); give a corpus with held-out text to evaluate on");
  auto dm = down.result();
  nlohmann::json downstream = dm.to_json();
  downstream["ablation"] = "zero";
  nlohmann::json counts = {{"batches", batches},
                           {"sequences", sequences},
                           {"positions", positions},
                           {"tokens_evaluated", recon.tokens()},
                           {"positions_excluded", positions - recon.tokens()},
                           {"ce_positions", dm.ce_positions},
                           {"kl_positions", dm.kl_positions}};
  return assemble("spliced", ctx, recon, firing, std::move(downstream), std::move(counts), opts_.per_latent);
}

nlohmann::json StandardEvaluator::evaluate_stored(EvalContext& ctx, const std::string& why_no_downstream) {
  auto& reader = *ctx.reader;
  SAELAB_CHECK(reader.d() == ctx.sae.shape().d_in, Error,
               "evaluator standard: stored activations "
               "for hook '",
               ctx.hook, "' have width ", reader.d(), " but the SAE's d_in is ", ctx.sae.shape().d_in,
               "; evaluate with the store harvested for this SAE's hook");
  metrics::ReconstructionAccumulator recon;
  metrics::LatentFiringAccumulator firing(ctx.sae.shape().d_sae);
  const std::int64_t epoch = reader.rows_per_epoch();
  std::int64_t batches = 0, rows = 0;
  for (; batches < opts_.batches && rows < epoch; ++batches) {
    torch::Tensor x = reader.next_batch();
    SAELAB_CHECK(x.dim() == 2 && x.size(1) == ctx.sae.shape().d_in, Error,
                 "evaluator standard: the store returned a batch ", x.sizes(), "; expected [n, ",
                 ctx.sae.shape().d_in, "]");
    if (x.size(0) == 0) break;
    // Never count a row twice: the reader starts a new epoch after the last row.
    if (rows + x.size(0) > epoch) x = x.narrow(0, 0, epoch - rows);
    auto applied = apply_sae(ctx.sae, x, ctx.input_scale);
    recon.add(x, applied.reconstruction);
    firing.add(applied.latents);
    rows += x.size(0);
  }
  SAELAB_CHECK(rows > 0, Error, "evaluator standard: the activation store for hook '", ctx.hook,
               "' has no rows to evaluate on");
  nlohmann::json counts = {{"batches", batches}, {"tokens_evaluated", rows}, {"store_rows_per_epoch", epoch}};
  return assemble("stored_activations", ctx, recon, firing, downstream_unavailable(why_no_downstream),
                  std::move(counts), opts_.per_latent);
}

}  // namespace saelab
