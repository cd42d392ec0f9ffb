// latents.json: the data behind the page, for scripts and tests.
//
// {"model_id", "hook", "architecture", "d_in", "d_sae", "tokens_counted", "scan", "selection",
//  "options": {...}, "latents": [{"latent", "fire_count", "density", "max_activation",
//  "mean_nonzero_activation", "top": [{"act", "seq", "pos", "token", "text"}],
//  "histogram": {"edges": [...], "counts": [...]},
//  "bands": [{"lo", "hi", "count", "samples": [{"act", "seq", "pos"}]}],
//  "logit_effects": {"available", "reason", "top": [{"token", "text", "value"}], "bottom": [...]}}]}
// Token text is made valid UTF-8 with visible markers (see html_text.hpp).
#include "html_text.hpp"
#include "report_model.hpp"
#include "saelab/eval/metrics.hpp"

namespace saelab::report {
namespace {

nlohmann::json example_json(const Example& e) {
  return {{"act", e.act}, {"seq", e.seq}, {"pos", e.pos}};
}

nlohmann::json logits_json(const std::vector<LogitEntry>& v, TokenText& text) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& e : v)
    a.push_back({{"token", e.token}, {"text", html::visible_text(text.get(e.token))}, {"value", e.value}});
  return a;
}

nlohmann::json latent_json(const LatentReport& L, const ReportData& d, TokenText& text) {
  const auto& ex = L.examples;
  nlohmann::json top = nlohmann::json::array();
  for (const auto& e : ex.top.sorted()) top.push_back(example_json(e));
  std::vector<double> edges;
  for (std::size_t i = 0; i <= ex.histogram.size(); ++i)
    edges.push_back(double(ex.max_act) * double(i) / double(ex.histogram.size()));
  nlohmann::json bands = nlohmann::json::array();
  for (const auto& b : ex.bands) {
    nlohmann::json samples = nlohmann::json::array();
    for (const auto& e : b.samples) samples.push_back(example_json(e));
    bands.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count}, {"samples", samples}});
  }
  nlohmann::json logits = {{"available", L.logits.available}};
  if (L.logits.available) {
    logits["top"] = logits_json(L.logits.top, text);
    logits["bottom"] = logits_json(L.logits.bottom, text);
  } else {
    logits["reason"] = L.logits.reason;
  }
  const double mean = L.fire_count ? L.sum_activation / double(L.fire_count) : 0.0;
  return {{"latent", ex.latent},
          {"fire_count", L.fire_count},
          {"density", metrics::json_number(metrics::feature_density(L.fire_count, d.tokens_counted))},
          {"max_activation", ex.max_act},
          {"mean_nonzero_activation", mean},
          {"nonzero_seen_in_examples_pass", ex.nonzero},
          {"top", top},
          {"histogram", {{"edges", edges}, {"counts", ex.histogram}}},
          {"bands", bands},
          {"logit_effects", logits}};
}

}  // namespace

nlohmann::json report_json(const ReportData& d, TokenText& text) {
  nlohmann::json latents = nlohmann::json::array();
  for (const auto& L : d.latents) latents.push_back(latent_json(L, d, text));
  const auto& c = d.collect;
  return {{"model_id", html::visible_text(d.model_id)},
          {"hook", d.hook},
          {"architecture", d.architecture},
          {"d_in", d.d_in},
          {"d_sae", d.d_sae},
          {"tokens_counted", d.tokens_counted},
          {"scan", d.scan_description},
          {"selection", d.selection_description},
          {"options",
           {{"top_k", c.top_k},
            {"bands", c.bands},
            {"band_samples", c.band_samples},
            {"histogram_bins", c.histogram_bins},
            {"context_left", c.context_left},
            {"context_right", c.context_right},
            {"seed", c.seed}}},
          {"latents", latents}};
}

}  // namespace saelab::report
