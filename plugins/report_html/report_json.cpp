#include "report_json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "saelab/core/token_display.hpp"

namespace saelab::report {

nlohmann::json display_json(std::string_view bytes) {
  const auto pieces = token_display(bytes);
  if (pieces.size() == 1 && !pieces[0].marker) return pieces[0].text;
  auto out = nlohmann::json::array();
  for (const auto& p : pieces) {
    if (p.marker && out.size() % 2 == 0) out.push_back("");  // markers sit at odd indices
    out.push_back(p.text);
  }
  return out;
}

double round_sig(double v, int sig) {
  if (v == 0 || !std::isfinite(v)) return v;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", sig, v);
  return std::strtod(buf, nullptr);
}

nlohmann::json example_json(const FeatureExample& e) {
  auto acts = nlohmann::json::array();
  for (float a : e.acts)
    acts.push_back(std::isnan(a) ? nlohmann::json(nullptr) : nlohmann::json(round_sig(a)));
  return {{"act", round_sig(e.act)}, {"seq", e.seq},       {"pos", e.pos},
          {"start", e.start},        {"tokens", e.tokens}, {"acts", acts}};
}

namespace {

nlohmann::json logit_list(const std::vector<LogitEntry>& v) {
  auto out = nlohmann::json::array();
  for (const auto& e : v) out.push_back({e.token, round_sig(e.value)});
  return out;
}

// Up to 5 [token, occurrences] among the top examples' own tokens, most frequent first (ties: the
// token of the higher example first).
nlohmann::json top_tokens(const FeatureStats& s) {
  std::map<std::int32_t, std::pair<std::int64_t, std::size_t>> seen;  // token -> (count, first rank)
  for (std::size_t i = 0; i < s.top.size(); ++i) {
    const auto& e = s.top[i];
    const std::int32_t t = e.tokens[static_cast<std::size_t>(e.pos - e.start)];
    auto [it, fresh] = seen.try_emplace(t, 0, i);
    ++it->second.first;
  }
  std::vector<std::pair<std::int32_t, std::pair<std::int64_t, std::size_t>>> v(seen.begin(), seen.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second.first != b.second.first ? a.second.first > b.second.first
                                            : a.second.second < b.second.second;
  });
  auto out = nlohmann::json::array();
  for (std::size_t i = 0; i < std::min<std::size_t>(5, v.size()); ++i)
    out.push_back({v[i].first, v[i].second.first});
  return out;
}

double fraction(std::int64_t a, std::int64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

}  // namespace

nlohmann::json feature_json(std::int64_t id, const FeatureStats& s, std::int64_t tokens,
                            const FeatureExtras& x) {
  nlohmann::json f = {{"id", id},
                      {"count", s.count},
                      {"density", round_sig(fraction(s.count, tokens))},
                      {"max", round_sig(s.max)},
                      {"mean", round_sig(tokens > 0 ? s.sum / static_cast<double>(tokens) : 0.0)},
                      {"mean_firing", round_sig(s.count > 0 ? s.sum / static_cast<double>(s.count) : 0.0)}};
  f["histogram"] = {
      {"bin_width", s.range / static_cast<double>(std::max<std::size_t>(1, s.histogram.size()))},
      {"counts", s.histogram}};
  auto top = nlohmann::json::array();
  for (const auto& e : s.top) top.push_back(example_json(e));
  f["top"] = std::move(top);
  auto bands = nlohmann::json::array();
  for (const auto& b : s.bands) {
    auto samples = nlohmann::json::array();
    for (const auto& e : b.samples) samples.push_back(example_json(e));
    bands.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count}, {"samples", std::move(samples)}});
  }
  f["bands"] = std::move(bands);
  auto nb = nlohmann::json::array();
  if (x.neighbours)
    for (const auto& n : *x.neighbours) nb.push_back({{"id", n.id}, {"cos", round_sig(n.cos, 4)}});
  f["neighbours"] = std::move(nb);
  if (x.logits)
    f["logits"] = {{"top", logit_list(x.logits->top)}, {"bottom", logit_list(x.logits->bottom)}};
  else
    f["logits"] = {{"unavailable", x.unavailable_reason}};
  return f;
}

nlohmann::json latent_row(std::int64_t id, const FeatureStats& s, std::int64_t tokens) {
  return {id,
          s.count,
          round_sig(fraction(s.count, tokens), 4),
          round_sig(s.max, 4),
          round_sig(s.count > 0 ? s.sum / static_cast<double>(s.count) : 0.0, 4),
          top_tokens(s)};
}

std::string js_call(const std::string& call, const nlohmann::json& value) {
  const std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  std::string out = call;
  out.reserve(text.size() + call.size() + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
             (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else
      out += c;
  }
  return out + ");\n";
}

}  // namespace saelab::report
