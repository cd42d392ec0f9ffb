#pragma once
// How a token's bytes are shown, the same way on every page and in the terminal.
//
// Token text is arbitrary bytes: a byte-level BPE token may be half a UTF-8 character, and a corpus
// may hold control characters or bidirectional overrides. A token's *display* is a list of pieces:
// code points shown as themselves, and markers shown faintly for what cannot be:
//   ↵ newline   ⇥ tab   ␍ carriage return   \xNN a byte that is not valid UTF-8 on its own, or a
//   C0 control (NUL is \x00)   [U+202E] an invisible formatting character (bidi overrides, zero
//   widths, C1 controls, soft hyphen, BOM)   ∅ an empty token.
// Every piece is valid UTF-8, so a display is always safe to print or to put in JSON.
#include <string>
#include <string_view>
#include <vector>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API DisplayPiece {
  bool marker = false;
  std::string text;  // UTF-8 of the code points, or the marker
};

// Adjacent pieces of the same kind are merged; an empty token is one marker piece "∅".
SAELAB_API std::vector<DisplayPiece> token_display(std::string_view bytes);

// The display as one plain string (markers inline), e.g. for a terminal without colour.
SAELAB_API std::string display_text(std::string_view bytes);

}  // namespace saelab
