#pragma once
// Numbers from command-line and option text, strictly: the whole string is the number, or there
// is none ("12" is 12; "12x", "", "1e999" are not).
#include <optional>
#include <string>

#include "saelab/core/export.hpp"

namespace saelab {

// A whole number (std::stoll's syntax) filling all of `s`; nullopt otherwise, overflow included.
SAELAB_API std::optional<long long> parse_integer(const std::string& s);
// A finite number (std::stod's syntax) filling all of `s`; nullopt otherwise (NaN, inf included).
SAELAB_API std::optional<double> parse_finite_number(const std::string& s);

}  // namespace saelab
