#include "html_text.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

#include "saelab/core/markup.hpp"
#include "saelab/core/token_display.hpp"

namespace saelab::html {

std::string escape(std::string_view s) {
  return markup_escape(s);
}

std::string token_html(std::string_view bytes, Whitespace ws) {
  std::string out;
  for (const auto& p : token_display(bytes)) {
    std::string text = p.text;
    if (!p.marker && ws == Whitespace::Standalone) {
      // Spaces of a token shown on its own become a faint '·' so " the" and "the" differ.
      std::string plain;
      for (char c : text) {
        if (c != ' ') {
          plain += c;
          continue;
        }
        out += escape(plain);
        plain.clear();
        out += "<span class=\"ws\">\u00B7</span>";
      }
      text = plain;
    }
    out += p.marker ? "<span class=\"ws\">" + escape(text) + "</span>" : escape(text);
  }
  return out;
}

std::string visible_text(std::string_view bytes) {
  return bytes.empty() ? std::string() : display_text(bytes);
}

std::string num(double v, int sig) {
  if (!std::isfinite(v)) return "\u2014";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", sig, v);
  return buf;
}

std::string count(std::int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += "\u2009";
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return "\u2014";
  const double p = fraction * 100.0;
  char buf[48];
  if (p == 0.0) return "0%";
  if (p >= 10)
    std::snprintf(buf, sizeof buf, "%.1f%%", p);
  else if (p >= 0.1)
    std::snprintf(buf, sizeof buf, "%.2f%%", p);
  else
    std::snprintf(buf, sizeof buf, "%.2g%%", p);
  return buf;
}

}  // namespace saelab::html
