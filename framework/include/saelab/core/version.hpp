#pragma once
#include <cstdint>

namespace saelab {

inline constexpr const char* kVersion = "0.1.0";

// Bumped whenever an interface header, the registry or the manifest changes layout or meaning.
// A plugin built against another value is refused before any of its C++ types is touched.
inline constexpr std::uint32_t kPluginAbiVersion = 2;  // 2: SourceInfo::special_tokens

}  // namespace saelab
