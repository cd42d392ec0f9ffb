#pragma once
// The registry: every factory that plugins add, by kind and name.
//
// The framework is a shared library, so the executable and every plugin see this one registry.
// Objects are created through it and hold a reference to the library that made them, so a plugin
// library is never unloaded while one of its objects lives.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/core/export.hpp"
#include "saelab/core/options.hpp"

namespace saelab {
namespace dist {
class ProcessGroup;
}

// What a factory gets besides its options.
struct SAELAB_API PluginContext {
  torch::Device device = torch::kCPU;
  std::uint64_t seed = 0;
  std::filesystem::path run_dir;  // empty outside a run (e.g. in `saelab validate`)
  // The data-parallel process group (saelab/dist/process_group.hpp) when this process is one rank
  // of several; null otherwise. Plugins whose training forward depends on the whole batch (BatchTopK)
  // reduce over it.
  std::shared_ptr<dist::ProcessGroup> group;
};

// Identity of the library a factory came from ("<builtin>" for the framework's own).
struct SAELAB_API LibraryInfo {
  std::string plugin;   // library's manifest name
  std::string version;  // library's manifest version
  std::filesystem::path file;
  std::shared_ptr<void> handle;  // keeps the library loaded
};

struct SAELAB_API FactoryInfo {
  std::string kind;               // "source", "sae", "loss", ...
  std::string name;               // what YAML files write after `plugin:`
  std::string description;        // one line
  std::vector<std::string> tags;  // e.g. the SAELens architecture names an SAE plugin loads
  OptionSchema schema;
  LibraryInfo library;  // declared before `create` so it outlives the plugin's code
  std::function<std::shared_ptr<void>(const Options&, const PluginContext&)> create;
};

class SAELAB_API Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // Throws PluginError if kind/name is already registered (naming both files).
  void add(FactoryInfo info);

  const FactoryInfo* find(const std::string& kind, const std::string& name) const;
  // The SAE plugin whose tags contain a SAELens architecture name.
  const FactoryInfo* find_by_tag(const std::string& kind, const std::string& tag) const;
  std::vector<std::string> names(const std::string& kind) const;
  std::vector<const FactoryInfo*> all() const;

  // Creates an object; exceptions thrown inside the plugin come back as saelab errors that name
  // the plugin and its file. The returned pointer keeps the plugin's library loaded.
  template <class I>
  std::shared_ptr<I> create(const std::string& name, const Options& opts, const PluginContext& ctx) const {
    return std::static_pointer_cast<I>(create_erased(I::kKind, name, opts, ctx));
  }
  template <class I>
  std::shared_ptr<I> create(const PluginRef& ref, const PluginContext& ctx) const {
    return create<I>(ref.plugin, *ref.options, ctx);
  }

  // Throws ConfigError listing the available names (and plugin files that failed to load).
  const FactoryInfo& require(const std::string& kind, const std::string& name, const SourceLoc& loc,
                             const std::string& key_path) const;

  void note_load_failure(const std::string& message) { load_failures_.push_back(message); }
  const std::vector<std::string>& load_failures() const { return load_failures_; }

 private:
  std::shared_ptr<void> create_erased(const std::string& kind, const std::string& name, const Options& opts,
                                      const PluginContext& ctx) const;
  std::map<std::string, std::map<std::string, FactoryInfo>> by_kind_;
  std::vector<std::string> load_failures_;
};

// Handed to a plugin's entry point. Everything a plugin registers is tagged with its library.
class SAELAB_API Registrar {
 public:
  Registrar(Registry& registry, LibraryInfo library) : registry_(registry), library_(std::move(library)) {}

  // Registers a factory for interface I. F: (const Options&, const PluginContext&) -> unique_ptr<T>.
  template <class I, class F>
  void add(const std::string& name, const std::string& description, OptionSchema schema, F factory,
           std::vector<std::string> tags = {}) {
    FactoryInfo info;
    info.kind = I::kKind;
    info.name = name;
    info.description = description;
    info.tags = std::move(tags);
    info.schema = std::move(schema);
    info.library = library_;
    info.create = [factory](const Options& o, const PluginContext& c) -> std::shared_ptr<void> {
      std::shared_ptr<I> obj(factory(o, c));
      return std::static_pointer_cast<void>(obj);
    };
    registry_.add(std::move(info));
  }

  const LibraryInfo& library() const { return library_; }

 private:
  Registry& registry_;
  LibraryInfo library_;
};

}  // namespace saelab
