#pragma once
// Loads the two plugins under test from the build tree and builds their options.
#include <map>
#include <string>

#include "saelab/core/options.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/registry.hpp"

namespace saelab::test {

inline Registry& report_registry() {
  static Registry registry;
  static bool loaded = [] {
    load_plugin_library(registry, std::string(SAELAB_PLUGIN_DIR) + "/libsaelab_plugin_evaluator_standard.so");
    load_plugin_library(registry, std::string(SAELAB_PLUGIN_DIR) + "/libsaelab_plugin_report_html.so");
    return true;
  }();
  (void)loaded;
  return registry;
}

// The plugin's defaults with some values replaced (as a YAML file would set them).
inline Options plugin_options(const std::string& kind, const std::string& name,
                              const std::map<std::string, OptionValue>& values) {
  const auto* f = report_registry().find(kind, name);
  if (!f) throw Error(cat("plugin ", kind, "/", name, " is not registered"));
  Options o = default_options(f->schema, kind);
  for (const auto& [k, v] : values) o.set_given(k, v, SourceLoc{"test.yaml", 7, 3});
  return o;
}

template <class I>
std::shared_ptr<I> make_plugin(const std::string& name, const std::map<std::string, OptionValue>& values,
                               std::uint64_t seed = 0) {
  PluginContext ctx;
  ctx.seed = seed;
  return report_registry().create<I>(name, plugin_options(I::kKind, name, values), ctx);
}

}  // namespace saelab::test
