#include "saelab/features/heatmap.hpp"

#include <algorithm>
#include <cstdio>

#include "saelab/core/error.hpp"
#include "saelab/core/markup.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/core/token_display.hpp"
#include "saelab/sae/apply.hpp"

namespace saelab {

TextLatents latents_on_text(ActivationSource& source, SaeArchitecture& sae, const std::string& hook,
                            std::string_view text, double input_scale, bool prepend_bos,
                            std::int64_t first_position) {
  torch::NoGradGuard no_grad;
  const auto ids = source.tokenize(text);
  SAELAB_CHECK(!ids.empty(), UsageError, "the text is empty; give some text with --text or --text-file");
  const SourceInfo& info = source.info();
  const bool bos = prepend_bos && info.bos_token >= 0;
  const std::int64_t max_ctx = info.max_context > 1 ? info.max_context : 1024;
  const std::int64_t body = bos ? max_ctx - 1 : max_ctx;
  TextLatents t;
  std::vector<torch::Tensor> parts;
  for (std::size_t at = 0; at < ids.size(); at += static_cast<std::size_t>(body)) {
    std::vector<std::int64_t> seg;
    if (bos) seg.push_back(info.bos_token);
    const std::size_t end = std::min(ids.size(), at + static_cast<std::size_t>(body));
    for (std::size_t i = at; i < end; ++i) seg.push_back(ids[i]);
    const auto tokens = torch::tensor(seg, torch::kInt64).unsqueeze(0);
    auto acts = source.run_with_hooks(tokens.to(source.device()), {hook});
    auto it = acts.find(hook);
    SAELAB_CHECK(it != acts.end(), Error, "model '", info.model_id, "' returned no activations for hook '",
                 hook, "'");
    auto lat = encode_sae(sae, it->second.reshape({-1, it->second.size(-1)}), input_scale)
                   .to(torch::kCPU, torch::kFloat32);
    const auto skip = std::min<std::int64_t>(std::max<std::int64_t>(first_position, bos ? 1 : 0),
                                             static_cast<std::int64_t>(seg.size()));
    for (std::size_t i = 0; i < seg.size(); ++i) {
      t.tokens.push_back(static_cast<std::int32_t>(seg[i]));
      t.bytes.push_back(source.decode({static_cast<std::int32_t>(seg[i])}));
      t.evaluated.push_back(static_cast<std::int64_t>(i) >= skip);
    }
    if (skip > 0) lat.narrow(0, 0, skip).zero_();
    parts.push_back(lat);
  }
  t.latents = torch::cat(parts, 0).contiguous();
  return t;
}

std::vector<LatentPeak> top_latents(const TextLatents& t, std::int64_t n) {
  const auto [peak, where] = t.latents.max(0);  // [d_sae]
  std::vector<LatentPeak> all;
  const auto* p = peak.data_ptr<float>();
  const auto* w = where.data_ptr<std::int64_t>();
  for (std::int64_t j = 0; j < peak.size(0); ++j)
    if (p[j] > 0) all.push_back({j, p[j], w[j]});
  std::sort(all.begin(), all.end(), [](const LatentPeak& a, const LatentPeak& b) {
    return a.peak != b.peak ? a.peak > b.peak : a.id < b.id;
  });
  if (static_cast<std::int64_t>(all.size()) > n) all.resize(static_cast<std::size_t>(n));
  return all;
}

std::vector<std::vector<LatentPeak>> top_latents_per_token(const TextLatents& t, std::int64_t n) {
  std::vector<std::vector<LatentPeak>> out(t.tokens.size());
  const std::int64_t d = t.latents.size(1), k = std::min(n, d);
  if (k <= 0) return out;
  const auto [vals, idx] = t.latents.topk(k, 1, true, true);
  for (std::size_t i = 0; i < t.tokens.size(); ++i) {
    if (!t.evaluated[i]) continue;
    for (std::int64_t r = 0; r < k; ++r) {
      const float v = vals[static_cast<std::int64_t>(i)][r].item<float>();
      if (v > 0)
        out[i].push_back(
            {idx[static_cast<std::int64_t>(i)][r].item<std::int64_t>(), v, static_cast<std::int64_t>(i)});
    }
  }
  return out;
}

int colour_bucket(float act, float peak) {
  if (!(act > 0) || !(peak > 0)) return 0;
  return std::clamp(static_cast<int>(std::ceil(act / peak * 9.0f)), 1, 9);
}

namespace {

// White to red in xterm-256 colours, one per bucket.
constexpr int kRamp[10] = {231, 230, 229, 223, 222, 216, 215, 209, 203, 196};

std::string fmt(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", static_cast<double>(v));
  return buf;
}

std::string ansi_token(const std::string& bytes, int bucket) {
  const std::string bg = "\x1b[48;5;" + std::to_string(kRamp[bucket]) + "m\x1b[38;5;16m";
  std::string out = bg;
  for (const auto& p : token_display(bytes)) out += p.marker ? "\x1b[2m" + p.text + "\x1b[22m" : p.text;
  return out + "\x1b[0m";
}

float peak_of(const TextLatents& t, std::int64_t j) {
  return t.latents.select(1, j).max().item<float>();
}

}  // namespace

std::string terminal_heatmap(const TextLatents& t, const std::vector<std::int64_t>& latents, bool ansi) {
  const std::int64_t d = t.latents.size(1);
  for (auto j : latents)
    SAELAB_CHECK(j >= 0 && j < d, UsageError, "latent ", j, " does not exist; this SAE has d_sae = ", d,
                 " (latents 0..", d - 1, ")");
  std::string out;
  if (!ansi) {  // plain numbers for scripts and pipes
    out += "pos\ttoken";
    for (auto j : latents) out += "\tlatent_" + std::to_string(j);
    out += "\n";
    for (std::size_t i = 0; i < t.tokens.size(); ++i) {
      out += std::to_string(i) + "\t" + display_text(t.bytes[i]);
      for (auto j : latents)
        out += "\t" + (t.evaluated[i] ? fmt(t.latents[static_cast<std::int64_t>(i)][j].item<float>())
                                      : std::string("-"));
      out += "\n";
    }
    return out;
  }
  for (auto j : latents) {
    const float peak = peak_of(t, j);
    out += "\x1b[1mlatent " + std::to_string(j) + "\x1b[0m  peak " + fmt(peak) + "\n";
    for (std::size_t i = 0; i < t.tokens.size(); ++i) {
      const float v = t.evaluated[i] ? t.latents[static_cast<std::int64_t>(i)][j].item<float>() : 0.0f;
      out += t.evaluated[i] ? ansi_token(t.bytes[i], colour_bucket(v, peak))
                            : "\x1b[2m" + display_text(t.bytes[i]) + "\x1b[0m";
    }
    out += "\n\n";
  }
  return out;
}

namespace {

std::string base64(const std::string& bytes) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v =
        (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

const char* const kHeatmapStyle =
    "body{font:14px/1.5 system-ui,sans-serif;margin:24px;color:#222}"
    "h2{font-size:15px;margin:18px 0 6px}.text{font-family:ui-monospace,monospace;white-space:pre-wrap;"
    "overflow-wrap:anywhere;border:1px solid #ddd;padding:8px;border-radius:4px}"
    ".t{border-radius:2px}.m{opacity:.5}.na{color:#999}"
    "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}"
    ".a0{background:#fff}.a1{background:#fff3e6}.a2{background:#ffe4c9}.a3{background:#ffd3ab}"
    ".a4{background:#ffc08c}.a5{background:#ffab6e}.a6{background:#ff9350}.a7{background:#f97a3a}"
    ".a8{background:#ef5b2a}.a9{background:#dc3a1e;color:#fff}";

std::string html_token(const std::string& bytes) {
  std::string out;
  for (const auto& p : token_display(bytes))
    out += p.marker ? "<span class=\"m\">" + markup_escape(p.text) + "</span>" : markup_escape(p.text);
  return out;
}

}  // namespace

std::string html_heatmap(const TextLatents& t, const std::vector<std::int64_t>& latents,
                         const std::vector<LatentPeak>& peaks, const std::string& title) {
  const std::string hash = base64(hex_to_bytes(sha256_hex(kHeatmapStyle)));
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'sha256-" +
      hash + "'; base-uri 'none'; form-action 'none'\"><title>" + markup_escape(title) + "</title><style>" +
      kHeatmapStyle + "</style></head><body><h1>" + markup_escape(title) + "</h1>";
  for (auto j : latents) {
    const float peak = peak_of(t, j);
    s += "<h2>latent " + std::to_string(j) + " (peak " + fmt(peak) + ")</h2><div class=\"text\">";
    for (std::size_t i = 0; i < t.tokens.size(); ++i) {
      if (!t.evaluated[i]) {
        s += "<span class=\"t na\" title=\"not evaluated\">" + html_token(t.bytes[i]) + "</span>";
        continue;
      }
      const float v = t.latents[static_cast<std::int64_t>(i)][j].item<float>();
      s += "<span class=\"t a" + std::to_string(colour_bucket(v, peak)) + "\" title=\"" + fmt(v) + "\">" +
           html_token(t.bytes[i]) + "</span>";
    }
    s += "</div>";
  }
  s += "<h2>Most active latents</h2><table><tr><th>latent</th><th>peak</th><th>at token</th></tr>";
  for (const auto& p : peaks)
    s += "<tr><td>" + std::to_string(p.id) + "</td><td>" + fmt(p.peak) + "</td><td>" +
         html_token(t.bytes[static_cast<std::size_t>(p.position)]) + "</td></tr>";
  return s + "</table></body></html>\n";
}

nlohmann::json text_features_json(const TextLatents& t, std::int64_t per_token) {
  const auto per = top_latents_per_token(t, per_token);
  auto tokens = nlohmann::json::array();
  for (std::size_t i = 0; i < t.tokens.size(); ++i) {
    auto lat = nlohmann::json::array();
    for (const auto& p : per[i]) lat.push_back({{"latent", p.id}, {"act", p.peak}});
    tokens.push_back({{"pos", i},
                      {"token", t.tokens[i]},
                      {"text", display_text(t.bytes[i])},
                      {"evaluated", static_cast<bool>(t.evaluated[i])},
                      {"latents", lat}});
  }
  return {{"tokens", tokens}};
}

std::string text_features_table(const TextLatents& t, std::int64_t per_token) {
  const auto per = top_latents_per_token(t, per_token);
  std::string out;
  for (std::size_t i = 0; i < t.tokens.size(); ++i) {
    char head[48];
    std::snprintf(head, sizeof head, "%4zu  ", i);
    std::string text = display_text(t.bytes[i]);
    out += head + text + std::string(text.size() < 16 ? 16 - text.size() : 1, ' ');
    if (!t.evaluated[i]) out += " (not evaluated)";
    for (const auto& p : per[i]) out += "  " + std::to_string(p.id) + ":" + fmt(p.peak);
    out += "\n";
  }
  return out;
}

}  // namespace saelab
