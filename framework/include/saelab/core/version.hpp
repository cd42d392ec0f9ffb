#pragma once
#include <cstdint>

namespace saelab {

inline constexpr const char* kVersion = "0.1.0";

// Bumped whenever an interface header, the registry or the manifest changes layout or meaning.
// A plugin built against another value is refused before any of its C++ types is touched.
// 2: SourceInfo::special_tokens; 3: SourceInfo::hook_layers, EvalContext/ReportContext::rows;
// 4: EvalContext::corpus and cache; 5: ReportContext::run_dir and config_text,
// ActivationSource::generate; 6: PluginContext::group, ActivationStore::join_parts;
// 7: Loss::step_sums and end_step
inline constexpr std::uint32_t kPluginAbiVersion = 7;

}  // namespace saelab
