#include "html_reporter.hpp"

#include <chrono>

#include "report_dir.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/features/directions.hpp"
#include "saelab/features/scan.hpp"
#include "saelab/sae/apply.hpp"

namespace saelab::report {

OptionSchema html_report_schema() {
  OptionSchema s;
  s.choice("input", "auto", {"auto", "tokens", "store"},
           "What to scan: held-out tokens run through the model, the harvested store's rows (no "
           "forward pass), or auto: the store when the run has a complete one, else tokens");
  s.integer("tokens", 1000000, "Evaluated positions to scan (whole sequences, so slightly more)").at_least(1);
  s.integer("batch_size", 8, "Sequences per forward pass when scanning tokens").at_least(1);
  s.boolean("exclude_bos", true, "Leave BOS positions out of the statistics and examples");
  s.integer("top_k", 20, "Top-activating examples per latent").at_least(0).at_most(1000);
  s.integer("bands", 5,
            "Activation bands: (0, R] is cut into 2*bands equal intervals, R the power of two "
            "above the latent's max, and those up to the max are shown (bands+1 to 2*bands)")
      .at_least(1)
      .at_most(50);
  s.integer("band_samples", 5, "Random examples per band").at_least(0).at_most(200);
  s.integer("context_left", 10, "Tokens of context before each example").at_least(0).at_most(1024);
  s.integer("context_right", 4, "Tokens of context after each example").at_least(0).at_most(1024);
  s.integer("histogram_bins", 40, "Bins of each latent's activation histogram (even)")
      .at_least(2)
      .at_most(1000);
  s.integer("neighbours", 5, "Latents with the most similar decoder direction, per latent")
      .at_least(0)
      .at_most(100);
  s.integer("logit_tokens", 10, "Top positive and negative logit-effect tokens per latent")
      .at_least(0)
      .at_most(200);
  s.integer("chunk_size", 64, "Latents per feature data file").at_least(1).at_most(4096);
  s.boolean("png", false, "Also write the figures as PNG, and the densest latents' histograms");
  s.integer("png_latents", 24, "Latent histograms written as PNG when png is true (densest first)")
      .at_least(0);
  s.integer("seed", 0, "Seed of the band samples (added to the run's seed)").at_least(0);
  return s;
}

HtmlReportOptions html_report_options(const Options& o, std::uint64_t seed) {
  HtmlReportOptions r;
  const std::string input = o.string("input");
  if (input != "auto" && input != "tokens" && input != "store")
    o.fail("input", cat("'", input, "' is not an input; allowed: auto, tokens, store"));
  r.input = input == "tokens" ? ScanInput::Tokens : input == "store" ? ScanInput::Store : ScanInput::Auto;
  r.tokens = o.integer("tokens");
  r.batch_size = o.integer("batch_size");
  r.exclude_bos = o.boolean("exclude_bos");
  r.features.top_k = o.integer("top_k");
  r.features.bands = o.integer("bands");
  r.features.band_samples = o.integer("band_samples");
  r.features.context_left = o.integer("context_left");
  r.features.context_right = o.integer("context_right");
  r.features.histogram_bins = o.integer("histogram_bins");
  if (r.features.histogram_bins % 2 != 0)
    o.fail("histogram_bins",
           cat(r.features.histogram_bins, " is odd; bins merge in pairs, so give an even number"));
  r.features.seed = seed + static_cast<std::uint64_t>(o.integer("seed"));
  r.neighbours = o.integer("neighbours");
  r.logit_tokens = o.integer("logit_tokens");
  r.chunk_size = o.integer("chunk_size");
  r.png = o.boolean("png");
  r.png_latents = o.integer("png_latents");
  return r;
}

namespace {

std::unique_ptr<FeatureScan> open_scan(ReportContext& ctx, const HtmlReportOptions& o) {
  const bool store = o.input == ScanInput::Store || (o.input == ScanInput::Auto && ctx.reader);
  if (store) {
    SAELAB_CHECK(ctx.reader, Error,
                 "report html: input is store but this run has no complete activation store; "
                 "run the harvest stage, or set report.reporter.input to tokens");
    SAELAB_CHECK(ctx.reader->d() == ctx.sae.shape().d_in, Error, "report html: stored activations for hook '",
                 ctx.hook, "' have width ", ctx.reader->d(), " but the SAE's d_in is ", ctx.sae.shape().d_in);
    log::info("report: scanning the harvested store's rows (input: ",
              o.input == ScanInput::Auto ? "auto, the run has a complete store" : "store",
              "); they carry their tokens, so no forward pass is needed");
    return store_feature_scan(*ctx.reader, o.tokens);
  }
  SAELAB_CHECK(ctx.source && ctx.tokens, Error, "report html: nothing to scan for hook '", ctx.hook,
               "': give a model and token sequences, or stored activations with provenance");
  check_hook_width(*ctx.source, ctx.hook, ctx.sae.shape().d_in, "report html");
  TokenScanOptions t;
  t.max_tokens = o.tokens;
  t.batch_size = o.batch_size;
  t.exclude_bos = o.exclude_bos;
  t.rows = ctx.rows;
  log::info("report: running held-out tokens through the model (input: ",
            o.input == ScanInput::Auto ? "auto, no complete store" : "tokens", ")");
  return token_feature_scan(*ctx.source, *ctx.tokens, ctx.hook, t);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The streaming pass: every chunk through the SAE into the collector.
ScanTiming scan_all(FeatureScan& scan, ReportContext& ctx, FeatureCollector& features) {
  Progress bar("report scan", scan.rows_target(), "tok");
  ScanChunk chunk;
  ScanTiming t;
  const auto start = std::chrono::steady_clock::now();
  while (scan.next(chunk)) {
    auto t0 = std::chrono::steady_clock::now();
    const auto latents = encode_sae(ctx.sae, chunk.x, ctx.input_scale);
    t.encode_s += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    features.add(latents, chunk);
    t.collect_s += seconds_since(t0);
    bar.update(std::min(scan.rows_done(), scan.rows_target()));
  }
  bar.finish();
  SAELAB_CHECK(features.tokens() > 0, Error, "report html: the scan for hook '", ctx.hook,
               "' found no tokens (", scan.description(), "); give a corpus or store with data");
  t.forward_s = scan.forward_seconds();
  t.scan_s = seconds_since(start);
  return t;
}

torch::Tensor decoder_of(SaeArchitecture& sae) {
  const auto state = sae.state();
  auto it = state.find("W_dec");
  SAELAB_CHECK(it != state.end(), Error, "report html: the SAE (", sae.architecture(),
               ") has no W_dec tensor; the report needs decoder directions");
  const auto& w = it->second;
  SAELAB_CHECK(w.dim() == 2 && w.size(0) == sae.shape().d_sae && w.size(1) == sae.shape().d_in, Error,
               "report html: W_dec has shape ", w.sizes(), "; expected [", sae.shape().d_sae, ", ",
               sae.shape().d_in, "]");
  return w.detach();
}

}  // namespace

void HtmlReporter::write(ReportContext& ctx) {
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(ctx.sae);
  auto scan = open_scan(ctx, opts_);
  log::info("report: up to ", opts_.tokens, " tokens of hook '", ctx.hook, "' for all ",
            ctx.sae.shape().d_sae, " latents");
  FeatureCollector features(ctx.sae.shape().d_sae, opts_.features);
  ReportInputs in{ctx, opts_, features};
  in.timing = scan_all(*scan, ctx, features);
  in.scan_description = scan->description();
  log::info("report: scanned ", in.scan_description);
  const auto w_dec = decoder_of(ctx.sae);
  auto t0 = std::chrono::steady_clock::now();
  in.neighbours = decoder_neighbours(w_dec, opts_.neighbours);
  in.timing.neighbours_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  if (ctx.source)
    in.logits = logit_tables(*ctx.source, ctx.hook, w_dec, ctx.input_scale, opts_.logit_tokens);
  else
    in.logits.reason = "No model was given, so logit effects are not available.";
  in.timing.logits_s = seconds_since(t0);
  write_report_dir(in);
}

}  // namespace saelab::report
