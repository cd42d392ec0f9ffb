#include "saelab/core/token_display.hpp"

#include <cstdint>
#include <cstdio>

namespace saelab {
namespace {

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

void push(std::vector<DisplayPiece>& out, bool marker, const std::string& text) {
  if (!out.empty() && out.back().marker == marker)
    out.back().text += text;
  else
    out.push_back({marker, text});
}

}  // namespace

std::vector<DisplayPiece> token_display(std::string_view s) {
  std::vector<DisplayPiece> out;
  if (s.empty()) return {{true, "\u2205"}};  // ∅
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = decode_one(s, i, cp);
    if (len == 0) {
      push(out, true, hex_byte(static_cast<unsigned char>(s[i])));
      ++i;
      continue;
    }
    i += len;
    if (cp == '\n')
      push(out, true, "\u21B5");  // ↵
    else if (cp == '\t')
      push(out, true, "\u21E5");  // ⇥
    else if (cp == '\r')
      push(out, true, "\u240D");  // ␍
    else if (cp < 0x20 || cp == 0x7F)
      push(out, true, hex_byte(static_cast<unsigned char>(cp)));
    else if (is_format_char(cp))
      push(out, true, code_point_marker(cp));
    else {
      std::string t;
      append_utf8(t, cp);
      push(out, false, t);
    }
  }
  return out;
}

std::string display_text(std::string_view bytes) {
  std::string out;
  for (const auto& p : token_display(bytes)) out += p.text;
  return out;
}

}  // namespace saelab
