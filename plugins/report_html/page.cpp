// The report page: header, evaluation summary, feature density, latent index, latent sections.
#include <algorithm>
#include <cmath>

#include "html_text.hpp"
#include "report_model.hpp"
#include "saelab/core/error.hpp"
#include "saelab/eval/metrics.hpp"
#include "saelab/core/version.hpp"
#include "svg_chart.hpp"

namespace saelab::report {

const std::string& TokenText::get(std::int32_t id) {
  auto it = cache_.find(id);
  if (it != cache_.end()) return it->second;
  std::string s = source_ ? source_->decode({id}) : cat("#", id);
  return cache_.emplace(id, std::move(s)).first->second;
}

namespace {

std::string json_value_html(const nlohmann::json& v) {
  if (v.is_null()) return "<span class=\"muted\">null</span>";
  if (v.is_number_float()) return html::num(v.get<double>(), 5);
  if (v.is_number()) return html::count(v.get<std::int64_t>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_string()) return html::escape(html::visible_text(v.get<std::string>()));
  if (v.is_array()) return cat("<span class=\"muted\">[", v.size(), " values]</span>");
  return html::escape(html::visible_text(v.dump()));
}

// A JSON object as nested tables; arrays are summarised (fire_counts has d_sae entries).
std::string json_table(const nlohmann::json& obj) {
  std::string s = "<table class=\"kv\"><tbody>";
  for (const auto& [k, v] : obj.items()) {
    s += cat("<tr><th>", html::escape(html::visible_text(k)), "</th><td>",
             v.is_object() ? json_table(v) : json_value_html(v), "</td></tr>");
  }
  return s + "</tbody></table>";
}

struct Tile {
  const char* key;
  const char* label;
  const char* hint;
};

std::string summary_section(const nlohmann::json& eval) {
  std::string s = "<section class=\"card\" id=\"summary\"><h2>Evaluation</h2>";
  if (!eval.is_object()) {
    return s +
           "<p class=\"muted\">The evaluate stage did not run, so there are no metrics here; "
           "the latents below come from the report's own scan.</p></section>";
  }
  const nlohmann::json sum = eval.value("summary", nlohmann::json::object());
  static const Tile tiles[] = {{"explained_variance", "Explained variance", "1 = perfect reconstruction"},
                               {"l0", "L0", "active latents per token"},
                               {"ce_loss_score", "CE loss score", "1 = no loss increase, 0 = zero ablation"},
                               {"kl_div_spliced", "KL (clean \u2016 spliced)", "nats per token"},
                               {"cosine_similarity", "Cosine similarity", "of x and x\u0302"},
                               {"dead_latents", "Dead latents", "never fired"},
                               {"mse", "MSE", "squared error per token, summed over d"}};
  s += "<div class=\"tiles\">";
  for (const auto& t : tiles) {
    if (!sum.contains(t.key)) continue;
    s += cat("<div class=\"tile\"><div class=\"tv\">", json_value_html(sum[t.key]),
             "</div><div class=\"tl\">", t.label, "</div><div class=\"th\">", t.hint, "</div></div>");
  }
  s += "</div>";
  if (sum.contains("ce_loss_score_reason"))
    s += cat("<p class=\"muted small\">CE loss score unavailable: ",
             json_value_html(sum["ce_loss_score_reason"]), "</p>");
  s += "<details><summary>All metrics (eval.json)</summary>" + json_table(eval) + "</details>";
  return s + "</section>";
}

std::string density_section(const ReportData& d) {
  std::string s = "<section class=\"card\" id=\"density\"><h2>Feature density</h2>";
  std::vector<double> logs;
  std::int64_t dead = 0;
  for (auto c : d.fire_counts) {
    if (c == 0)
      ++dead;
    else
      logs.push_back(metrics::log10_feature_density(c, d.tokens_counted));
  }
  s += cat("<p class=\"muted small\">log\u2081\u2080 of the fraction of the ", html::count(d.tokens_counted),
           " scanned tokens on which each latent fires. ", html::count(dead), " of ", html::count(d.d_sae),
           " latents (", html::percent(d.d_sae ? double(dead) / double(d.d_sae) : 0.0),
           ") never fired and are not drawn.</p>");
  if (logs.empty()) return s + "</section>";
  HistogramChart c;
  const double lo = std::floor(*std::min_element(logs.begin(), logs.end()));
  const double hi = std::max(lo + 1.0, std::ceil(*std::max_element(logs.begin(), logs.end()) + 1e-9));
  const int bins = 50;
  for (int i = 0; i <= bins; ++i) c.edges.push_back(lo + (hi - lo) * i / bins);
  c.counts.assign(bins, 0.0);
  for (double v : logs)
    c.counts[std::min<std::size_t>(bins - 1, static_cast<std::size_t>((v - lo) / (hi - lo) * bins))] += 1;
  c.colours = {"#4f7cac"};
  c.x_label = "log\u2081\u2080 feature density";
  c.y_label = "latents";
  c.aria_label = "Histogram of log10 feature density across latents";
  c.width = 720;
  c.height = 200;
  return s + svg_histogram(c) + "</section>";
}

// The token at a latent's strongest activation, for a first impression.
std::string top_token_cell(const LatentReport& L, const TokenTable& tokens, TokenText& text) {
  const auto top = L.examples.top.sorted();
  if (top.empty()) return "\u2014";
  const auto id = tokens.get(top.front().seq, top.front().pos);
  if (id < 0) return "\u2014";
  return "<code class=\"tok\">" + html::token_html(text.get(id), html::Whitespace::Standalone) + "</code>";
}

std::string index_section(const ReportData& d, const TokenTable& tokens, TokenText& text) {
  std::string s = cat("<section class=\"card\" id=\"latents\"><h2>Latents shown (", d.latents.size(),
                      ")</h2><p class=\"muted small\">", html::escape(d.selection_description),
                      "</p><input id=\"filter\" type=\"search\" placeholder=\"Filter by latent id or "
                      "top token\" aria-label=\"Filter latents\"><table class=\"index\"><thead><tr>"
                      "<th>Latent</th><th class=\"num\">Fires</th><th class=\"num\">Density</th>"
                      "<th class=\"num\">Max</th><th>Top token</th>"
                      "</tr></thead><tbody>");
  for (const auto& L : d.latents) {
    s += cat("<tr><td><a href=\"#latent-", L.examples.latent, "\">#", L.examples.latent,
             "</a></td><td class=\"num\">", html::count(L.fire_count), "</td><td class=\"num\">",
             html::percent(metrics::feature_density(L.fire_count, d.tokens_counted)),
             "</td><td class=\"num\">", html::num(L.examples.max_act, 4), "</td><td>",
             top_token_cell(L, tokens, text), "</td></tr>");
  }
  return s + "</tbody></table></section>";
}

}  // namespace

std::string render_page(const ReportData& d, const TokenTable& tokens, TokenText& text) {
  std::string title = cat("SAE report \u00B7 ", d.model_id, " \u00B7 ", d.hook);
  std::string s =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">";
  s += "<title>" + html::escape(html::visible_text(title)) + "</title><style>" + kStyle +
       "</style></head><body>";
  s += cat("<header class=\"top\"><div class=\"brand\">saelab</div><h1>SAE report</h1><div class=\"sub\">",
           "<span>model <b>", html::escape(html::visible_text(d.model_id)), "</b></span>", "<span>hook <b>",
           html::escape(html::visible_text(d.hook)), "</b></span>", "<span>", html::escape(d.architecture),
           " SAE <b>", d.d_in, " \u2192 ", html::count(d.d_sae), "</b></span><span>scanned ",
           html::escape(d.scan_description), "</span></div>",
           "<nav><a href=\"#summary\">Evaluation</a><a href=\"#density\">Feature density</a>",
           "<a href=\"#latents\">Latents</a></nav></header><main>");
  s += summary_section(d.eval);
  s += density_section(d);
  s += index_section(d, tokens, text);
  for (const auto& L : d.latents) s += render_latent(L, d, tokens, text);
  s += cat("</main><footer>Generated by saelab ", kVersion,
           ". Self-contained: this file loads nothing from the network.</footer><script>", kScript,
           "</script></body></html>");
  return s;
}

}  // namespace saelab::report
