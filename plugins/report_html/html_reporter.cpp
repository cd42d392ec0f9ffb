#include "html_reporter.hpp"

#include <algorithm>
#include <filesystem>

#include <ATen/ATen.h>

#include "html_text.hpp"
#include "report_model.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/eval/metrics.hpp"
#include "saelab/sae/apply.hpp"
#include "scan_input.hpp"

namespace saelab::report {

OptionSchema html_report_schema() {
  OptionSchema s;
  s.integer("latents", 24, "How many latents to show").at_least(1).at_most(100000);
  s.choice("selection", "most_active", {"most_active", "max_activation", "random", "list"},
           "Which latents: most often active, highest max activation, a seeded random sample of "
           "the live ones, or latent_ids");
  s.strings("latent_ids", {}, "Latent indices to show when selection is list");
  s.integer("top_k", 20, "Top-activating examples per latent").at_least(1).at_most(1000);
  s.integer("bands", 5, "Equal-width activation intervals to sample examples from (0: none)")
      .at_least(0)
      .at_most(50);
  s.integer("band_samples", 4, "Random examples per interval").at_least(0).at_most(200);
  s.integer("context_left", 10, "Tokens of context before each example").at_least(0).at_most(1024);
  s.integer("context_right", 4, "Tokens of context after each example").at_least(0).at_most(1024);
  s.integer("histogram_bins", 40, "Bins of each latent's activation histogram").at_least(2).at_most(1000);
  s.integer("logit_tokens", 10, "Top positive and negative logit-effect tokens per latent")
      .at_least(0)
      .at_most(200);
  s.integer("batches", 16, "Token batches to scan (or stored-activation batches)").at_least(1);
  s.integer("batch_size", 8, "Sequences per token batch").at_least(1);
  s.boolean("exclude_bos", true, "Leave BOS positions out of the statistics and examples");
  s.integer("activation_cache_mb", 1024,
            "Hook activations kept in memory between the two scan "
            "passes; beyond this the model is run again")
      .at_least(0);
  s.integer("seed", 0, "Seed for random selection and interval samples (added to the run's seed)")
      .at_least(0);
  return s;
}

HtmlReportOptions html_report_options(const Options& o, std::uint64_t seed) {
  HtmlReportOptions r;
  r.latents = o.integer("latents");
  r.selection_name = o.string("selection");
  r.selection = parse_selection(r.selection_name);
  for (const auto& s : o.strings("latent_ids")) {
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || v < 0)
      o.fail("latent_ids", cat("'", s, "' is not a latent index; write non-negative integers"));
    r.latent_ids.push_back(v);
  }
  if (r.selection == Selection::List && r.latent_ids.empty())
    o.fail("latent_ids", "selection is list but latent_ids is empty; name the latents to show");
  r.latent_ids_where = cat(o.where("latent_ids").str(), ": ", o.key_path("latent_ids"));
  r.collect.top_k = o.integer("top_k");
  r.collect.bands = o.integer("bands");
  r.collect.band_samples = o.integer("band_samples");
  r.collect.context_left = o.integer("context_left");
  r.collect.context_right = o.integer("context_right");
  r.collect.histogram_bins = o.integer("histogram_bins");
  r.collect.seed = seed + static_cast<std::uint64_t>(o.integer("seed"));
  r.logit_tokens = o.integer("logit_tokens");
  r.batches = o.integer("batches");
  r.batch_size = o.integer("batch_size");
  r.exclude_bos = o.boolean("exclude_bos");
  r.cache_bytes = o.integer("activation_cache_mb") << 20;
  return r;
}

namespace {

std::unique_ptr<ScanInput> open_scan(ReportContext& ctx, const HtmlReportOptions& o) {
  if (ctx.source && ctx.tokens) {
    check_hook_width(*ctx.source, ctx.hook, ctx.sae.shape().d_in, "report html");
    TokenScanOptions t;
    t.batches = o.batches;
    t.batch_size = o.batch_size;
    t.exclude_bos = o.exclude_bos;
    t.rows = ctx.rows;
    t.cache_bytes = o.cache_bytes;
    return token_scan(*ctx.source, *ctx.tokens, ctx.hook, t);
  }
  if (ctx.reader) {
    SAELAB_CHECK(ctx.reader->d() == ctx.sae.shape().d_in, Error,
                 "report html: stored activations "
                 "for hook '",
                 ctx.hook, "' have width ", ctx.reader->d(), " but the SAE's d_in is ", ctx.sae.shape().d_in);
    return reader_scan(*ctx.reader, o.batches);
  }
  throw Error(cat("report html: nothing to scan for hook '", ctx.hook,
                  "': give a model and token "
                  "sequences, or stored activations with provenance"));
}

// Pass 1: every latent's firing count, sum and max over the evaluated tokens.
metrics::LatentFiringAccumulator first_pass(ScanInput& scan, ReportContext& ctx) {
  metrics::LatentFiringAccumulator firing(ctx.sae.shape().d_sae);
  ScanBatch b;
  while (scan.next(b)) {
    // All rows go through the SAE, as in pass 2, so both passes see bit-identical activations.
    auto latents = apply_sae(ctx.sae, b.x, ctx.input_scale).latents;
    firing.add(latents.index_select(0, b.include.nonzero().squeeze(1).to(latents.device())));
  }
  SAELAB_CHECK(firing.tokens() > 0, Error, "report html: the scan for hook '", ctx.hook,
               "' found no tokens (", scan.description(), "); give a corpus or store with data");
  return firing;
}

// Pass 2: examples, histograms and interval samples of the chosen latents.
void second_pass(ScanInput& scan, ReportContext& ctx, const std::vector<std::int64_t>& ids,
                 std::vector<LatentExamples>& out, const CollectOptions& opts) {
  scan.rewind();
  const auto dev = module_device(ctx.sae);
  const auto index = torch::tensor(ids, torch::kInt64).to(dev);
  ScanBatch b;
  while (scan.next(b)) {
    auto lat = apply_sae(ctx.sae, b.x, ctx.input_scale).latents.index_select(1, index);
    collect_batch(out, lat, b, opts);
  }
}

LogitEffects logit_effects_of(const torch::Tensor& effects_row, std::int64_t n) {
  LogitEffects g;
  g.available = true;
  const auto row = effects_row.to(torch::kCPU, torch::kFloat32).contiguous();
  const std::int64_t k = std::min<std::int64_t>(n, row.size(0));
  auto top = row.topk(k, 0, true, true);
  auto bottom = row.topk(k, 0, false, true);
  for (std::int64_t i = 0; i < k; ++i) {
    g.top.push_back({static_cast<std::int32_t>(std::get<1>(top)[i].item<std::int64_t>()),
                     std::get<0>(top)[i].item<float>()});
    g.bottom.push_back({static_cast<std::int32_t>(std::get<1>(bottom)[i].item<std::int64_t>()),
                        std::get<0>(bottom)[i].item<float>()});
  }
  const double lo = row.min().item<double>(), hi = row.max().item<double>();
  if (hi > lo) {
    const int bins = 40;
    auto counts = row.histc(bins, lo, hi).to(torch::kFloat64).contiguous();
    for (int i = 0; i <= bins; ++i) g.hist_edges.push_back(lo + (hi - lo) * i / bins);
    g.hist_counts.assign(counts.data_ptr<double>(), counts.data_ptr<double>() + bins);
  }
  return g;
}

// Direct logit effects of the chosen latents' decoder rows, in raw activation units.
std::vector<LogitEffects> logit_effects(ReportContext& ctx, const std::vector<std::int64_t>& ids,
                                        std::int64_t n) {
  std::vector<LogitEffects> out(ids.size());
  auto unavailable = [&](const std::string& why) {
    for (auto& g : out) g.reason = why;
    return out;
  };
  if (!ctx.source) return unavailable("No model was given, so logit effects are not available.");
  if (n == 0) return unavailable("Logit effects were switched off (logit_tokens: 0).");
  const auto state = ctx.sae.state();
  auto it = state.find("W_dec");
  if (it == state.end()) return unavailable("This SAE has no W_dec tensor.");
  const auto& w = it->second;  // [d_sae, d_in]
  SAELAB_CHECK(w.dim() == 2 && w.size(0) == ctx.sae.shape().d_sae, Error,
               "report html: W_dec has "
               "shape ",
               w.sizes(), "; expected [", ctx.sae.shape().d_sae, ", ", ctx.sae.shape().d_in, "]");
  auto dirs = w.index_select(0, torch::tensor(ids, torch::kInt64).to(w.device()))
                  .to(ctx.source->device(), torch::kFloat32) /
              ctx.input_scale;
  auto effects = ctx.source->logit_effects(dirs, ctx.hook);  // [n, vocab]
  if (!effects.defined())
    return unavailable(cat("Hook '", ctx.hook,
                           "' is not in the residual stream, so its directions "
                           "have no direct logit effect."));
  SAELAB_CHECK(effects.dim() == 2 && effects.size(0) == static_cast<std::int64_t>(ids.size()), Error,
               "report html: logit_effects returned ", effects.sizes(), " for ", ids.size(), " directions");
  for (std::size_t i = 0; i < ids.size(); ++i)
    out[i] = logit_effects_of(effects[static_cast<std::int64_t>(i)], n);
  return out;
}

std::string describe_selection(const HtmlReportOptions& o, std::size_t shown) {
  switch (o.selection) {
    case Selection::MostActive:
      return cat("The ", shown, " latents that fire most often in the scan.");
    case Selection::MaxActivation:
      return cat("The ", shown, " latents with the highest activation in the scan.");
    case Selection::Random:
      return cat(shown, " latents drawn at random (seed ", o.collect.seed, ") from those that fire.");
    case Selection::List:
      return cat("The ", shown, " latents listed in the configuration.");
  }
  return "";
}

}  // namespace

void HtmlReporter::write(ReportContext& ctx) {
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(ctx.sae);
  const auto shape = ctx.sae.shape();
  for (auto id : opts_.latent_ids)
    SAELAB_CHECK(opts_.selection != Selection::List || id < shape.d_sae, ConfigError, opts_.latent_ids_where,
                 ": latent ", id, " does not exist; this SAE has d_sae = ", shape.d_sae, " (indices 0..",
                 shape.d_sae - 1, ")");
  auto scan = open_scan(ctx, opts_);
  auto firing = first_pass(*scan, ctx);
  const auto ids = select_latents(opts_.selection, firing.fire_counts(), firing.max_activation(),
                                  opts_.latents, opts_.latent_ids, opts_.collect.seed);

  std::vector<LatentExamples> examples;
  const auto maxv = firing.max_activation().contiguous();
  for (auto id : ids) examples.emplace_back(id, maxv.data_ptr<float>()[id], opts_.collect);
  if (!ids.empty()) second_pass(*scan, ctx, ids, examples, opts_.collect);
  auto logits = logit_effects(ctx, ids, opts_.logit_tokens);

  ReportData d;
  d.model_id = ctx.source ? ctx.source->info().model_id : std::string("(stored activations)");
  d.hook = ctx.hook;
  d.architecture = ctx.sae.architecture();
  d.d_in = shape.d_in;
  d.d_sae = shape.d_sae;
  d.scan_description = scan->description();
  d.selection_description = describe_selection(opts_, ids.size());
  d.tokens_counted = firing.tokens();
  const auto counts = firing.fire_counts().contiguous();
  d.fire_counts.assign(counts.data_ptr<std::int64_t>(), counts.data_ptr<std::int64_t>() + shape.d_sae);
  d.eval = ctx.eval;
  d.collect = opts_.collect;
  const auto sums = firing.sum_activation().contiguous();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    LatentReport L{std::move(examples[i]), d.fire_counts[static_cast<std::size_t>(ids[i])],
                   sums.data_ptr<double>()[ids[i]], std::move(logits[i])};
    d.latents.push_back(std::move(L));
  }
  TokenText text(ctx.source);
  std::filesystem::create_directories(ctx.out_dir);
  write_file_atomic(ctx.out_dir / "index.html", render_page(d, scan->tokens(), text));
  write_file_atomic(ctx.out_dir / "latents.json", report_json(d, text).dump(1) + "\n");
}

}  // namespace saelab::report
