#pragma once
// Turning untrusted text (decoded tokens, corpus contents, model ids) into safe HTML.
//
// Token text is arbitrary bytes: a byte-level BPE token may be half a UTF-8 character, and a corpus
// may contain markup, control characters or bidirectional overrides. Everything is validated as
// UTF-8 and escaped; what cannot be shown as itself is shown as a visible marker (↵ for a newline,
// \xNN for a stray byte, [U+202E] for an invisible formatting character), so the page is always
// valid UTF-8 and no token can change the page's structure or reading direction.
#include <cstdint>
#include <string>
#include <string_view>

namespace saelab::html {

// Escapes & < > " ' for element content and attribute values alike. The input must be valid UTF-8
// (use visible_text first for untrusted bytes).
std::string escape(std::string_view s);

enum class Whitespace {
  Context,    // spaces kept as spaces (tokens read as running text)
  Standalone  // spaces shown as a faint '·' so " the" and "the" differ at a glance
};

// Untrusted bytes -> HTML: escaped, markers wrapped in <span class="ws"> (faint) so they read as
// markup, not text. An empty token shows as a faint ∅.
std::string token_html(std::string_view bytes, Whitespace ws);

// Untrusted bytes -> plain valid UTF-8 with the same markers, no markup (for title attributes and
// JSON); escape() the result before putting it in HTML.
std::string visible_text(std::string_view bytes);

// Numbers for display: `sig` significant digits, "—" for NaN/inf.
std::string num(double v, int sig = 4);
// An integer with thin-space thousands separators.
std::string count(std::int64_t v);
// A fraction as a percentage with adaptive precision ("0.0123%").
std::string percent(double fraction);

}  // namespace saelab::html
