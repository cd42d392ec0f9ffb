#pragma once
// Text for HTML and XML (SVG): the five characters that are markup become entities, so the
// result is safe as element text and inside a quoted attribute. Bytes are copied otherwise.
#include <string>
#include <string_view>

#include "saelab/core/export.hpp"

namespace saelab {

SAELAB_API std::string markup_escape(std::string_view s);

}  // namespace saelab
