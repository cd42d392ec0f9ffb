// One latent's section of the report: statistics, activation histogram, logit effects, top
// activations and interval samples, each example drawn as its context with a heatmap.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "html_text.hpp"
#include "report_model.hpp"
#include "saelab/core/error.hpp"
#include "saelab/eval/metrics.hpp"
#include "svg_chart.hpp"

namespace saelab::report {
namespace {

std::string alpha_style(float act, float max) {
  if (!(max > 0) || !(act > 0)) return "";
  const double a = std::clamp(double(act) / double(max), 0.0, 1.0);
  if (a < 0.004) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, " style=\"background:rgba(255,102,0,%.3f)\"", 0.06 + 0.84 * a);
  return buf;
}

std::string token_span(TokenText& text, std::int32_t id, float act, float max, bool centre) {
  if (id < 0) return "<span class=\"t u\" title=\"not scanned\">\u2026</span>";
  const std::string& s = text.get(id);
  const bool excluded = std::isnan(act);
  std::string cls = centre ? "t c" : excluded ? "t x" : "t";
  std::string title = cat("\u201C", html::visible_text(s), "\u201D  id ", id, "  \u00B7  act ",
                          excluded ? std::string("(not evaluated)") : html::num(act, 4));
  return cat("<span class=\"", cls, "\"", excluded ? std::string() : alpha_style(act, max), " title=\"",
             html::escape(title), "\">", html::token_html(s, html::Whitespace::Context), "</span>");
}

// One example: its activation and the tokens around it.
std::string example_row(const Example& e, float max, const TokenTable& tokens, TokenText& text,
                        const CollectOptions& opts) {
  std::string row =
      cat("<div class=\"ex\"><span class=\"val\">", html::num(e.act, 4), "</span><span class=\"ctx\">");
  std::int64_t lo, hi;
  if (!e.window.empty()) {
    lo = e.window_start;
    hi = e.window_start + static_cast<std::int64_t>(e.window.size()) - 1;
  } else {
    lo = std::max<std::int64_t>(0, e.pos - opts.context_left);
    hi = std::min<std::int64_t>(tokens.length(e.seq) - 1, e.pos + opts.context_right);
  }
  if (lo > 0) row += "<span class=\"more\">\u2026</span>";
  for (std::int64_t p = lo; p <= hi; ++p) {
    float act = std::nanf("");
    if (!e.window.empty())
      act = e.window[static_cast<std::size_t>(p - lo)];
    else if (p == e.pos)
      act = e.act;
    row += token_span(text, tokens.get(e.seq, p), act, max, p == e.pos);
  }
  if (hi < tokens.length(e.seq) - 1) row += "<span class=\"more\">\u2026</span>";
  row += cat("</span><span class=\"where\">seq ", e.seq, " \u00B7 pos ", e.pos, "</span></div>");
  return row;
}

std::string histogram_svg(const LatentReport& L, const CollectOptions& opts) {
  HistogramChart c;
  const auto n = static_cast<std::size_t>(opts.histogram_bins);
  for (std::size_t i = 0; i <= n; ++i) c.edges.push_back(double(L.examples.max_act) * i / n);
  for (auto v : L.examples.histogram) c.counts.push_back(double(v));
  c.colours = {"#f28c28"};
  c.x_label = "activation (non-zero only)";
  c.y_label = "tokens";
  c.aria_label = cat("Histogram of latent ", L.examples.latent, "'s non-zero activations");
  return svg_histogram(c);
}

std::string logit_table(const std::vector<LogitEntry>& v, TokenText& text, const char* cls,
                        const char* heading) {
  std::string s = cat("<table class=\"logits ", cls, "\"><thead><tr><th colspan=\"2\">", heading,
                      "</th></tr></thead><tbody>");
  for (const auto& e : v) {
    s += cat("<tr><td><code class=\"tok\" title=\"id ", e.token, "\">",
             html::token_html(text.get(e.token), html::Whitespace::Standalone),
             "</code></td><td class=\"num\">", html::num(e.value, 3), "</td></tr>");
  }
  return s + "</tbody></table>";
}

std::string logits_block(const LatentReport& L, TokenText& text) {
  const auto& g = L.logits;
  if (!g.available) return cat("<p class=\"muted\">", html::escape(g.reason), "</p>");
  std::string s = "<div class=\"logit-tables\">";
  s += logit_table(g.bottom, text, "neg", "Negative logits");
  s += logit_table(g.top, text, "pos", "Positive logits");
  s += "</div>";
  if (!g.hist_counts.empty()) {
    HistogramChart c;
    c.edges = g.hist_edges;
    c.counts = g.hist_counts;
    for (std::size_t i = 0; i < c.counts.size(); ++i)
      c.colours.push_back(c.edges[i] + c.edges[i + 1] < 0 ? "#d6604d" : "#4393c3");
    c.x_label = "direct logit effect over the vocabulary";
    c.y_label = "tokens";
    c.aria_label = "Histogram of direct logit effects";
    s += svg_histogram(c);
  }
  return s;
}

std::string bands_block(const LatentReport& L, const ReportData& data, const TokenTable& tokens,
                        TokenText& text) {
  const auto& ex = L.examples;
  if (ex.bands.empty()) return "";
  std::string s =
      "<h3>Activation intervals</h3><p class=\"muted small\">Random examples from "
      "equal-width intervals of the non-zero activations, highest first.</p>";
  for (auto it = ex.bands.rbegin(); it != ex.bands.rend(); ++it) {
    const double share = ex.nonzero > 0 ? double(it->count) / double(ex.nonzero) : 0.0;
    s += cat("<details class=\"band\"", it == ex.bands.rbegin() ? " open" : "", "><summary>", "Interval ",
             html::num(it->lo, 3), " \u2013 ", html::num(it->hi, 3), " <span class=\"muted\">\u00B7 ",
             html::percent(share), " of non-zero (", html::count(it->count), ")</span></summary>");
    if (it->samples.empty()) s += "<p class=\"muted small\">No activations in this interval.</p>";
    auto samples = it->samples;
    std::sort(samples.begin(), samples.end(), ranks_before);
    for (const auto& e : samples) s += example_row(e, ex.max_act, tokens, text, data.collect);
    s += "</details>";
  }
  return s;
}

}  // namespace

std::string render_latent(const LatentReport& L, const ReportData& data, const TokenTable& tokens,
                          TokenText& text) {
  const auto& ex = L.examples;
  const double density = metrics::feature_density(L.fire_count, data.tokens_counted);
  std::string s = cat("<section class=\"latent card\" id=\"latent-", ex.latent, "\">");
  s += cat("<div class=\"lhead\"><h2>Latent <span class=\"id\">#", ex.latent, "</span></h2>");
  if (L.fire_count == 0) {
    s += cat("<span class=\"pill dead\">dead: never fired in ", html::count(data.tokens_counted),
             " tokens</span><a class=\"back\" href=\"#latents\">\u2191 index</a></div></section>");
    return s;
  }
  s += cat("<span class=\"pill\">density ", html::percent(density), " \u00B7 1 in ",
           html::num(1.0 / density, 3), " tokens</span>");
  s += cat("<span class=\"pill\">log\u2081\u2080 density ",
           html::num(metrics::log10_feature_density(L.fire_count, data.tokens_counted), 3), "</span>");
  s += cat("<span class=\"pill\">max ", html::num(ex.max_act, 4), "</span>");
  s += cat("<span class=\"pill\">mean when active ", html::num(L.sum_activation / double(L.fire_count), 4),
           "</span>");
  s += "<a class=\"back\" href=\"#latents\">\u2191 index</a></div><div class=\"lgrid\"><div class=\"lcol\">";
  s += "<h3>Activation histogram</h3>" + histogram_svg(L, data.collect);
  s += "<h3>Logit effects</h3>" + logits_block(L, text);
  s += "</div><div class=\"rcol\">";
  s += cat("<h3>Top activations <span class=\"muted small\">(", ex.top.size(), ", max ",
           html::num(ex.max_act, 4), ")</span></h3>");
  for (const auto& e : ex.top.sorted()) s += example_row(e, ex.max_act, tokens, text, data.collect);
  s += bands_block(L, data, tokens, text);
  s += "</div></div></section>";
  return s;
}

}  // namespace saelab::report
