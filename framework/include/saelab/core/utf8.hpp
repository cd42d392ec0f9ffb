#pragma once
// UTF-8 well-formedness (Unicode 15, table 3-7): no overlong forms, no surrogates (U+D800..DFFF),
// nothing above U+10FFFF. The same rules PCRE2 applies in UTF mode, so a run this accepts can be
// given to a UTF regex without its own check.
#include <cstddef>
#include <string_view>

#include "saelab/core/export.hpp"

namespace saelab {

// Length in bytes of the longest well-formed prefix of `s` (s.size() when all of it is valid).
SAELAB_API std::size_t utf8_valid_prefix(std::string_view s);

// Bytes of the code point starting at s[i]: its sequence's length when well-formed, else 1 (an
// invalid byte counts as one column). For counting and splitting text by code points.
SAELAB_API std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

inline bool utf8_is_valid(std::string_view s) {
  return utf8_valid_prefix(s) == s.size();
}

}  // namespace saelab
