#include "html_text.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

#include "saelab/core/markup.hpp"

namespace saelab::html {
namespace {

// One piece of decoded input: a code point to show as itself, or a marker to show faintly.
struct Piece {
  bool marker = false;
  std::string text;  // UTF-8 of the code point, or the marker text
};

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", unsigned(b));
  return buf;
}

std::string code_point_marker(std::uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "[U+%04X]", unsigned(cp));
  return buf;
}

// Invisible characters that would reorder or hide the surrounding text.
bool is_format_char(std::uint32_t cp) {
  return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069) ||
         cp == 0xFEFF || cp == 0x00AD || (cp >= 0x80 && cp < 0xA0);  // C1 controls
}

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 when the bytes are not valid UTF-8
// (truncated, overlong, a surrogate, or beyond U+10FFFF).
std::size_t decode_one(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  std::uint32_t min;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else
    return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

std::vector<Piece> pieces(std::string_view s, Whitespace ws) {
  std::vector<Piece> out;
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = decode_one(s, i, cp);
    if (len == 0) {
      out.push_back({true, hex_byte(static_cast<unsigned char>(s[i]))});
      ++i;
      continue;
    }
    i += len;
    if (cp == '\n')
      out.push_back({true, "\u21B5"});  // ↵
    else if (cp == '\t')
      out.push_back({true, "\u21E5"});  // ⇥
    else if (cp == '\r')
      out.push_back({true, "\u240D"});  // ␍
    else if (cp == ' ' && ws == Whitespace::Standalone)
      out.push_back({true, "\u00B7"});  // ·
    else if (cp < 0x20 || cp == 0x7F)
      out.push_back({true, hex_byte(static_cast<unsigned char>(cp))});
    else if (is_format_char(cp))
      out.push_back({true, code_point_marker(cp)});
    else {
      Piece p;
      append_utf8(p.text, cp);
      out.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace

std::string escape(std::string_view s) {
  return markup_escape(s);
}

std::string token_html(std::string_view bytes, Whitespace ws) {
  if (bytes.empty()) return "<span class=\"ws\">\u2205</span>";
  std::string out;
  bool in_marker = false;
  for (const auto& p : pieces(bytes, ws)) {
    if (p.marker != in_marker) {
      out += p.marker ? "<span class=\"ws\">" : "</span>";
      in_marker = p.marker;
    }
    out += escape(p.text);
  }
  if (in_marker) out += "</span>";
  return out;
}

std::string visible_text(std::string_view bytes) {
  std::string out;
  for (const auto& p : pieces(bytes, Whitespace::Context)) out += p.text;
  return out;
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
