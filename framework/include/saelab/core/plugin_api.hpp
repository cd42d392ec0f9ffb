#pragma once
// What a plugin library exports. Include this in exactly one source file of a plugin and write
//
//   static void register_plugin(saelab::Registrar& r) { r.add<saelab::Loss>("mse", ...); }
//   SAELAB_PLUGIN("my_losses", "1.0.0", "Reconstruction losses", register_plugin)
//
// The host reads the manifest, a plain C struct, before touching any C++ type of the library: a
// library built against another plugin ABI, LibTorch version or libstdc++ string ABI is refused
// with both versions named. Only then does it call the registration entry point.
#include <cstdint>

#include <boost/config.hpp>
#include <boost/dll/alias.hpp>
#include <torch/version.h>

#include "saelab/core/registry.hpp"
#include "saelab/core/version.hpp"

extern "C" {
// Layout is frozen: new fields go at the end, and manifest_size tells the host which exist.
struct SaelabPluginManifest {
  std::uint32_t manifest_size;  // sizeof(SaelabPluginManifest) as the plugin saw it
  std::uint32_t abi_version;    // saelab::kPluginAbiVersion at build time
  std::uint32_t torch_major;
  std::uint32_t torch_minor;
  std::uint32_t cxx11_abi;  // _GLIBCXX_USE_CXX11_ABI
  const char* name;
  const char* version;
  const char* saelab_version;
  const char* description;
};
}

namespace saelab {
using PluginRegisterFn = void(Registrar&);
inline constexpr const char* kManifestSymbol = "saelab_plugin_manifest";
inline constexpr const char* kRegisterSymbol = "saelab_plugin_register";
}  // namespace saelab

// Tests build a deliberately incompatible plugin by overriding this.
#ifndef SAELAB_PLUGIN_ABI_VERSION
#define SAELAB_PLUGIN_ABI_VERSION ::saelab::kPluginAbiVersion
#endif

#define SAELAB_PLUGIN(name_, version_, description_, register_fn_)                     \
  extern "C" BOOST_SYMBOL_EXPORT const SaelabPluginManifest saelab_plugin_manifest = { \
      sizeof(SaelabPluginManifest),                                                    \
      SAELAB_PLUGIN_ABI_VERSION,                                                       \
      TORCH_VERSION_MAJOR,                                                             \
      TORCH_VERSION_MINOR,                                                             \
      _GLIBCXX_USE_CXX11_ABI,                                                          \
      name_,                                                                           \
      version_,                                                                        \
      ::saelab::kVersion,                                                              \
      description_};                                                                   \
  BOOST_DLL_ALIAS(register_fn_, saelab_plugin_register)
