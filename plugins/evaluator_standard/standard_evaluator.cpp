#include "standard_evaluator.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "saelab/data/corpus.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/eval/metrics.hpp"
#include "saelab/eval/recovery.hpp"
#include "saelab/interfaces/eval_cache.hpp"
#include "saelab/interfaces/ground_truth.hpp"
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
  s.boolean("mean_ablation", true,
            "Also run the model with the hook replaced by its mean over the batch's evaluated "
            "positions (CE loss score against mean ablation)");
  s.boolean("error_term", true,
            "Also run the model with the SAE plus its error term spliced in, which must give the "
            "clean cross-entropy back (a check of the splice)");
  add_sparse_probing_schema(s);
  return s;
}

StandardEvalOptions standard_eval_options(const Options& o) {
  StandardEvalOptions r;
  r.batches = o.integer("batches");
  r.batch_size = o.integer("batch_size");
  r.exclude_bos = o.boolean("exclude_bos");
  r.per_latent = o.boolean("per_latent");
  r.mean_ablation = o.boolean("mean_ablation");
  r.error_term = o.boolean("error_term");
  r.probing = sparse_probing_options(o);
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

// SAEBench's dictionary geometry: how close each latent's decoder row (encoder column) comes to
// another latent's.
nlohmann::json geometry(const SaeArchitecture& sae) {
  nlohmann::json j;
  torch::NoGradGuard no_grad;
  j["average_max_decoder_cosine_sim"] = metrics::json_number(
      metrics::max_cosine_to_others(sae.decoder_weight().detach()).mean().item<double>());
  const TensorMap state = sae.state();
  if (auto it = state.find("W_enc"); it != state.end() && it->second.dim() == 2)
    j["average_max_encoder_cosine_sim"] =
        metrics::json_number(metrics::max_cosine_to_others(it->second.detach().t()).mean().item<double>());
  return j;
}

// Recovery of the planted dictionary, when the source has one; classification needs rows.
std::optional<metrics::DictionaryRecovery> dictionary_recovery(const EvalContext& ctx) {
  const auto* truth = dynamic_cast<const GroundTruth*>(ctx.source);
  if (!truth) return std::nullopt;
  torch::NoGradGuard no_grad;
  return metrics::dictionary_recovery(truth->true_features(), ctx.sae.decoder_weight().detach());
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
  if (!ctx.target_hook.empty()) {
    j["target_hook"] = ctx.target_hook;
    j["sae"]["d_out"] = ctx.sae.shape().out();
    j["units"] = "reconstruction metrics compare the transcoder's output with the target hook, raw units";
  }
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
  j["geometry"] = geometry(ctx.sae);
  j["downstream"] = std::move(downstream);
  j["counts"] = std::move(counts);
  return j;
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

torch::Tensor evaluated_positions(const torch::Tensor& tokens, const SourceInfo& info, bool exclude_bos,
                                  const RowFilter& rows) {
  auto mask =
      exclude_bos && info.bos_token >= 0 ? tokens.ne(info.bos_token) : torch::ones_like(tokens, torch::kBool);
  return mask.logical_and(rows_to_keep(tokens.cpu(), rows).to(tokens.device()));
}

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

struct StandardEvaluator::Spliced {
  metrics::ReconstructionAccumulator recon;
  metrics::LatentFiringAccumulator firing;
  metrics::DownstreamAccumulator down;
  std::optional<metrics::DictionaryRecovery> truth;
  std::optional<metrics::ClassificationAccumulator> classification;
  std::int64_t sequences = 0, positions = 0;
  std::int64_t runs_reused = 0;  // model runs taken from ctx.cache
};

namespace {

// One model run with `hook` replaced by fn, its output checked.
ModelOutput run_replaced(ActivationSource& source, const torch::Tensor& tokens, const std::string& hook,
                         const HookFn& fn, const char* run) {
  ModelOutput out = source.run_with_replacement(tokens, hook, fn, true);
  check_output(out, tokens, run, source.info().model_id);
  return out;
}

}  // namespace

namespace {

// The model's own output (through an identity replacement at `hook`), cached across a sweep.
ModelOutput clean_run(EvalContext& ctx, const torch::Tensor& tokens, const std::string& hook,
                      const std::string& batch_key, std::int64_t& runs_reused) {
  const auto entry = cached(
      ctx.cache, batch_key + "|clean",
      [&] {
        auto out = run_replaced(
            *ctx.source, tokens, hook, [](const torch::Tensor& a) { return a; }, "clean");
        return EvalCache::Entry{{"logits", out.logits}, {"loss", out.loss}};
      },
      &runs_reused);
  return ModelOutput{entry.at("logits"), entry.at("loss")};
}

// A transcoder's input: `hook`'s activations [batch * seq, d_in] from a clean pass.
torch::Tensor transcoder_input(EvalContext& ctx, const torch::Tensor& tokens) {
  return ctx.source->run_with_hooks(tokens, {ctx.hook}).at(ctx.hook).reshape({-1, ctx.sae.shape().d_in});
}

}  // namespace

// Every run of one batch of sequences: clean, spliced, zero-ablated and the optional ones. An SAE
// replaces its hook's activation by its reconstruction; a transcoder replaces the target hook's
// (its MLP's output) by its prediction from the input hook, captured first from a clean run (the
// input comes before the target in the forward pass, so the replacement leaves it unchanged).
void StandardEvaluator::evaluate_batch(EvalContext& ctx, const torch::Tensor& tokens, Spliced& acc) {
  auto& source = *ctx.source;
  const std::string model = source.info().model_id;
  const bool transcoder = !ctx.target_hook.empty();
  const std::string& hook = transcoder ? ctx.target_hook : ctx.hook;  // the hook replaced
  const std::int64_t d = ctx.sae.shape().out();
  const auto mask = evaluated_positions(tokens, source.info(), opts_.exclude_bos, ctx.rows);
  const auto flat_rows = mask.reshape({-1}).nonzero().squeeze(1);
  const auto keep = [&](const torch::Tensor& act) { return mask.to(act.device()).unsqueeze(-1); };
  const torch::Tensor input = transcoder ? transcoder_input(ctx, tokens) : torch::Tensor();

  // The clean and ablated runs do not depend on the SAE: a sweep's later runs reuse them.
  const std::string batch_key =
      ctx.cache ? eval_cache_key("eval", source.info(), hook, {tokens, mask}) : std::string();
  const ModelOutput clean = clean_run(ctx, tokens, hook, batch_key, acc.runs_reused);
  std::optional<SaeApplied> applied;
  torch::Tensor x;  // [batch * seq, d] the replaced hook's clean activation
  auto apply = [&](const torch::Tensor& flat) {
    return transcoder ? apply_transcoder(ctx.sae, input) : apply_sae(ctx.sae, flat, ctx.input_scale);
  };
  auto splice = [&](const torch::Tensor& act) {
    SAELAB_CHECK(act.dim() == 3 && act.size(2) == d, Error, "evaluator standard: hook '", hook,
                 "' of model '", model, "' gave activations ", act.sizes(), "; expected [batch, seq, ", d,
                 "]");
    x = act.reshape({-1, d});
    applied = apply(x);
    return at::where(keep(act), applied->reconstruction.view(act.sizes()), act);
  };
  auto spliced = run_replaced(source, tokens, hook, splice, "spliced");
  SAELAB_CHECK(applied.has_value(), Error, "evaluator standard: model '", model,
               "' never called the replacement function for hook '", hook, "'");
  const auto ce_mask = mask.narrow(1, 0, tokens.size(1) - 1);
  acc.down.add_ce(metrics::ModelRun::Clean, clean.loss, ce_mask);
  acc.down.add_ce(metrics::ModelRun::Spliced, spliced.loss, ce_mask);
  acc.down.add_kl(metrics::ModelRun::Spliced, kl_per_position(clean.logits, spliced.logits), mask);
  spliced = ModelOutput();

  auto other_run = [&](metrics::ModelRun run, const HookFn& fn, const char* name, bool cacheable = true) {
    const auto entry = cached(
        cacheable ? ctx.cache : nullptr, batch_key + "|" + name,
        [&] {
          auto out = run_replaced(source, tokens, hook, fn, name);
          return EvalCache::Entry{{"loss", out.loss}, {"kl", kl_per_position(clean.logits, out.logits)}};
        },
        &acc.runs_reused);
    acc.down.add_ce(run, entry.at("loss"), ce_mask);
    acc.down.add_kl(run, entry.at("kl"), mask);
    return entry.at("loss");
  };
  other_run(
      metrics::ModelRun::ZeroAblated, [](const torch::Tensor& a) { return torch::zeros_like(a); },
      "zero-ablated");
  const auto rows_dev = flat_rows.to(x.device());
  if (opts_.mean_ablation) {
    const auto mean = x.index_select(0, rows_dev).mean(0);  // [d]
    other_run(
        metrics::ModelRun::MeanAblated,
        [&](const torch::Tensor& a) { return mean.to(a.dtype()).expand_as(a).clone(); }, "mean-ablated");
  }
  if (opts_.error_term) {
    auto with_error = [&](const torch::Tensor& act) {
      const auto flat = act.reshape({-1, d});
      const auto recon = apply(flat).reconstruction;
      return at::where(keep(act), (recon + (flat - recon)).view(act.sizes()), act);
    };
    auto loss = other_run(metrics::ModelRun::WithErrorTerm, with_error, "with-error-term", false);
    acc.down.add_error_term_gap(clean.loss, loss, ce_mask);
  }

  const auto latents = applied->latents.index_select(0, flat_rows.to(applied->latents.device()));
  acc.recon.add(x.index_select(0, rows_dev), applied->reconstruction.index_select(0, rows_dev));
  acc.firing.add(latents);
  if (acc.classification) {
    const auto& truth = dynamic_cast<const GroundTruth&>(source);
    acc.classification->add(truth.true_coefficients(tokens.cpu()).index_select(0, flat_rows.cpu()), latents);
  }
  acc.sequences += tokens.size(0);
  acc.positions += tokens.numel();
}

nlohmann::json StandardEvaluator::evaluate_spliced(EvalContext& ctx) {
  check_hook_width(*ctx.source, ctx.hook, ctx.sae.shape().d_in, "evaluator standard");
  if (!ctx.target_hook.empty())
    check_hook_width(*ctx.source, ctx.target_hook, ctx.sae.shape().out(), "evaluator standard (target hook)");
  Spliced acc{{}, metrics::LatentFiringAccumulator(ctx.sae.shape().d_sae), {}, dictionary_recovery(ctx), {}};
  if (acc.truth) acc.classification.emplace(acc.truth->best_feature);
  std::int64_t batches = 0;
  Progress progress("evaluate", opts_.batches * opts_.batch_size, "seq");
  for (; batches < opts_.batches; ++batches) {
    torch::Tensor tokens = ctx.tokens->next(opts_.batch_size);
    if (tokens.size(0) == 0) break;
    evaluate_batch(ctx, tokens.to(ctx.source->device(), torch::kInt64), acc);
    progress.update(acc.sequences, {{"tok", double(acc.recon.tokens())}});
  }
  progress.finish();
  SAELAB_CHECK(acc.recon.tokens() > 0, Error, "evaluator standard: the token sequences for hook '", ctx.hook,
               "' were empty (", acc.sequences,
               " sequences read); give a corpus with held-out text to evaluate on");
  auto dm = acc.down.result();
  nlohmann::json downstream = dm.to_json();
  downstream["ablation"] = "zero";
  nlohmann::json counts = {{"batches", batches},
                           {"sequences", acc.sequences},
                           {"positions", acc.positions},
                           {"tokens_evaluated", acc.recon.tokens()},
                           {"positions_excluded", acc.positions - acc.recon.tokens()},
                           {"ce_positions", dm.ce_positions},
                           {"kl_positions", dm.kl_positions},
                           {"model_runs_reused", acc.runs_reused}};
  auto j = assemble("spliced", ctx, acc.recon, acc.firing, std::move(downstream), std::move(counts),
                    opts_.per_latent);
  if (acc.truth) j["ground_truth"] = metrics::recovery_json(*acc.truth, acc.classification->result());
  if (!opts_.probing.tasks.empty()) add_probing(ctx, j);
  return j;
}

// SAEBench's headline probing figures also go to the summary.
void StandardEvaluator::add_probing(EvalContext& ctx, nlohmann::json& j) {
  if (!ctx.corpus) {
    j["sparse_probing"] = {{"error", "no corpus was given to read the labelled documents from"}};
    return;
  }
  j["sparse_probing"] = run_sparse_probing(ctx, opts_.probing);
  const auto& mean = j["sparse_probing"]["mean"];
  for (const char* key : {"llm_test_accuracy", "sae_top_1_test_accuracy"})
    if (mean.contains(key)) j["summary"][key] = mean[key];
}

nlohmann::json StandardEvaluator::evaluate_stored(EvalContext& ctx, const std::string& why_no_downstream) {
  SAELAB_CHECK(ctx.target_hook.empty(), Error, "evaluator standard: transcoder '", ctx.hook, "' -> '",
               ctx.target_hook,
               "' is evaluated by splicing it into the model, which needs the source and "
               "token sequences; ",
               why_no_downstream);
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
  auto j = assemble("stored_activations", ctx, recon, firing, downstream_unavailable(why_no_downstream),
                    std::move(counts), opts_.per_latent);
  if (!opts_.probing.tasks.empty())
    j["sparse_probing"] = {
        {"error", "sparse probing reads the corpus's documents through the model; " + why_no_downstream}};
  // Stored rows carry no planted coefficients: the dictionary's recovery only, no classification.
  if (auto truth = dictionary_recovery(ctx))
    j["ground_truth"] =
        metrics::recovery_json(*truth, metrics::ClassificationAccumulator(truth->best_feature).result());
  return j;
}

}  // namespace saelab
