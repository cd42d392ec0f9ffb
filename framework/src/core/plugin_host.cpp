#include "saelab/core/plugin_host.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include "saelab/core/plugin_api.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFilePrefix = "libsaelab_plugin_";

std::string rebuild_hint() {
  return "rebuild the plugin against this saelab (its headers and the same LibTorch), "
         "or remove it from the plugin path";
}

void check_manifest(const SaelabPluginManifest& m, const fs::path& file) {
  if (m.manifest_size < sizeof(std::uint32_t) * 2)
    throw PluginError(cat("plugin '", file.string(), "' has a malformed manifest (size ", m.manifest_size,
                          "); ", rebuild_hint()));
  if (m.abi_version != kPluginAbiVersion)
    throw PluginError(cat("plugin '", file.string(), "' was built for saelab plugin ABI version ",
                          m.abi_version, ", but this saelab ", kVersion, " has ABI version ",
                          kPluginAbiVersion, "; ", rebuild_hint()));
  if (m.manifest_size < sizeof(SaelabPluginManifest))
    throw PluginError(cat("plugin '", file.string(), "' has a truncated manifest (", m.manifest_size,
                          " bytes, expected ", sizeof(SaelabPluginManifest), "); ", rebuild_hint()));
  if (m.torch_major != TORCH_VERSION_MAJOR || m.torch_minor != TORCH_VERSION_MINOR)
    throw PluginError(cat("plugin '", file.string(), "' was built against LibTorch ", m.torch_major, ".",
                          m.torch_minor, ", but this saelab uses LibTorch ", TORCH_VERSION_MAJOR, ".",
                          TORCH_VERSION_MINOR, "; ", rebuild_hint()));
  if (m.cxx11_abi != static_cast<std::uint32_t>(_GLIBCXX_USE_CXX11_ABI))
    throw PluginError(cat("plugin '", file.string(), "' was built with _GLIBCXX_USE_CXX11_ABI=", m.cxx11_abi,
                          ", but this saelab uses ", _GLIBCXX_USE_CXX11_ABI, "; ", rebuild_hint()));
  if (!m.name || !m.version)
    throw PluginError(cat("plugin '", file.string(), "' has no name or version in its manifest"));
}

std::vector<fs::path> plugin_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (name.rfind(kFilePrefix, 0) == 0 && p.extension() == ".so") files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

LoadedLibrary load_plugin_library(Registry& registry, const fs::path& file) {
  auto lib = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  lib->load(file.string(), boost::dll::load_mode::default_mode, ec);
  if (ec) throw PluginError(cat("cannot load plugin '", file.string(), "': ", ec.message()));
  if (!lib->has(kManifestSymbol))
    throw PluginError(cat("'", file.string(), "' is not a saelab plugin: it exports no '", kManifestSymbol,
                          "'. Build plugins with saelab_add_plugin() and SAELAB_PLUGIN()."));
  const auto& manifest = lib->get<const SaelabPluginManifest>(kManifestSymbol);
  check_manifest(manifest, file);
  if (!lib->has(kRegisterSymbol))
    throw PluginError(
        cat("plugin '", file.string(), "' has a manifest but no '", kRegisterSymbol, "' entry point"));

  LoadedLibrary info{manifest.name, manifest.version, manifest.description ? manifest.description : "", file};
  LibraryInfo lib_info{info.plugin, info.version, file, std::shared_ptr<void>(lib, lib.get())};
  Registrar registrar(registry, lib_info);
  auto& entry = lib->get_alias<PluginRegisterFn>(kRegisterSymbol);
  try {
    entry(registrar);
  } catch (const Error& e) {
    throw PluginError(cat("plugin '", file.string(), "' failed to register: ", e.what()));
  } catch (const std::exception& e) {
    throw PluginError(cat("plugin '", file.string(), "' failed to register: ", e.what()));
  } catch (...) {
    throw PluginError(cat("plugin '", file.string(), "' threw a non-standard exception while registering"));
  }
  return info;
}

PluginScan load_plugins(Registry& registry, const std::vector<fs::path>& dirs) {
  PluginScan scan;
  std::vector<fs::path> seen;
  for (const auto& dir : dirs) {
    for (const auto& file : plugin_files(dir)) {
      std::error_code ec;
      fs::path canon = fs::weakly_canonical(file, ec);
      if (std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
      seen.push_back(canon);
      try {
        scan.loaded.push_back(load_plugin_library(registry, file));
      } catch (const Error& e) {
        scan.refused.push_back(e.what());
        registry.note_load_failure(e.what());
      }
    }
  }
  return scan;
}

std::vector<fs::path> default_plugin_dirs() {
  std::vector<fs::path> dirs;
  // A framework library inside the build tree uses the build's plugins; an installed one uses
  // <libdir>/saelab/plugins next to itself. Never both: the same plugin would register twice.
  boost::dll::fs::error_code ec;
  fs::path self(boost::dll::this_line_location(ec).string());
  // The test is the library's own directory, not a path prefix: a prefix installed under the
  // build tree (as the install test does) is still an installed saelab.
  const fs::path build_lib_dir = fs::path(SAELAB_BUILD_LIB_DIR).lexically_normal();
  if (!ec && self.parent_path().lexically_normal() != build_lib_dir) {
    dirs.push_back((self.parent_path() / SAELAB_PLUGIN_REL_TO_LIB).lexically_normal());
  } else {
    dirs.emplace_back(SAELAB_PLUGIN_BUILD_DIR);
  }
  if (const char* env = std::getenv("SAELAB_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) {
      if (!item.empty()) dirs.emplace_back(item);
    }
  }
  return dirs;
}

namespace {
struct GlobalPlugins {
  Registry registry;
  PluginScan scan;
};
GlobalPlugins& globals() {
  // Deliberately leaked: libraries must outlive every static object that may hold a plugin
  // object, and at exit nothing needs unloading.
  static GlobalPlugins* g = [] {
    auto* p = new GlobalPlugins();
    p->scan = load_plugins(p->registry, default_plugin_dirs());
    return p;
  }();
  return *g;
}
}  // namespace

Registry& plugin_registry() {
  return globals().registry;
}
const PluginScan& plugin_scan() {
  return globals().scan;
}

}  // namespace saelab
