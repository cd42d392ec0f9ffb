#pragma once
// Finds plugin libraries and registers what they provide.
//
// Search order: the build tree's plugin directory, the install tree's (next to the executable),
// then every directory in SAELAB_PLUGIN_PATH (colon-separated). Files named
// libsaelab_plugin_<name>.so are loaded. For each, the host reads the manifest (a plain C struct)
// first and refuses the library if its plugin ABI, LibTorch version or libstdc++ string ABI differs
// from the host's, naming the file and both versions. Only then is the registration entry point
// called. Libraries stay loaded for the life of the process (and each created object additionally
// holds its library).
#include <filesystem>
#include <string>
#include <vector>

#include "saelab/core/export.hpp"
#include "saelab/core/registry.hpp"

namespace saelab {

struct SAELAB_API LoadedLibrary {
  std::string plugin, version, description;
  std::filesystem::path file;
};

// Loads one library into the registry. Throws PluginError (file, both versions, what to do).
SAELAB_API LoadedLibrary load_plugin_library(Registry& registry, const std::filesystem::path& file);

struct SAELAB_API PluginScan {
  std::vector<LoadedLibrary> loaded;
  std::vector<std::string> refused;  // one message per library that failed (also noted in registry)
};

// Loads every plugin library in `dirs` (missing directories are skipped). A library that fails is
// recorded, not fatal: a YAML file that names one of its plugins then gets the refusal in its error.
SAELAB_API PluginScan load_plugins(Registry& registry, const std::vector<std::filesystem::path>& dirs);

// The default search path described above.
SAELAB_API std::vector<std::filesystem::path> default_plugin_dirs();

// The process-wide registry, filled on first use from default_plugin_dirs().
SAELAB_API Registry& plugin_registry();
SAELAB_API const PluginScan& plugin_scan();

}  // namespace saelab
