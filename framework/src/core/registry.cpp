#include "saelab/core/registry.hpp"

#include <algorithm>

namespace saelab {

Registry::~Registry() {
  // Factories' code lives in the plugin libraries: drop every std::function before the last
  // reference to its library goes (FactoryInfo declares `library` before `create` for the same
  // reason, so each entry also dies in the right order on its own).
  for (auto& [kind, by_name] : by_kind_) {
    for (auto& [name, info] : by_name) info.create = nullptr;
  }
}

void Registry::add(FactoryInfo info) {
  auto& by_name = by_kind_[info.kind];
  auto it = by_name.find(info.name);
  if (it != by_name.end()) {
    throw PluginError(cat("two plugins register the ", info.kind, " '", info.name, "': '",
                          it->second.library.file.string(), "' and '", info.library.file.string(),
                          "'. Remove one of them from the plugin path (SAELAB_PLUGIN_PATH)."));
  }
  std::string name = info.name;
  by_name.emplace(std::move(name), std::move(info));
}

const FactoryInfo* Registry::find(const std::string& kind, const std::string& name) const {
  auto k = by_kind_.find(kind);
  if (k == by_kind_.end()) return nullptr;
  auto n = k->second.find(name);
  return n == k->second.end() ? nullptr : &n->second;
}

const FactoryInfo* Registry::find_by_tag(const std::string& kind, const std::string& tag) const {
  auto k = by_kind_.find(kind);
  if (k == by_kind_.end()) return nullptr;
  for (const auto& [name, info] : k->second) {
    if (std::find(info.tags.begin(), info.tags.end(), tag) != info.tags.end()) return &info;
  }
  return nullptr;
}

std::vector<std::string> Registry::names(const std::string& kind) const {
  std::vector<std::string> out;
  auto k = by_kind_.find(kind);
  if (k != by_kind_.end()) {
    for (const auto& [name, info] : k->second) out.push_back(name);
  }
  return out;
}

std::vector<const FactoryInfo*> Registry::all() const {
  std::vector<const FactoryInfo*> out;
  for (const auto& [kind, by_name] : by_kind_) {
    for (const auto& [name, info] : by_name) out.push_back(&info);
  }
  return out;
}

const FactoryInfo& Registry::require(const std::string& kind, const std::string& name, const SourceLoc& loc,
                                     const std::string& key_path) const {
  if (const FactoryInfo* f = find(kind, name)) return *f;
  std::string available;
  for (const auto& n : names(kind)) available += (available.empty() ? "" : ", ") + n;
  std::string msg = cat(loc.str(), ": ", key_path, ": unknown ", kind, " plugin '", name,
                        "'; available: ", available.empty() ? "(none loaded)" : available);
  for (const auto& f : load_failures_) msg += cat("\n  note: a plugin library was refused: ", f);
  msg += "\n  (run `saelab plugins` to list every plugin and the file it came from)";
  throw ConfigError(msg);
}

std::shared_ptr<void> Registry::create_erased(const std::string& kind, const std::string& name,
                                              const Options& opts, const PluginContext& ctx) const {
  const FactoryInfo* f = find(kind, name);
  if (!f) throw ConfigError(cat("no ", kind, " plugin named '", name, "' is loaded"));
  std::shared_ptr<void> obj;
  // The exception object may be of a type defined in the plugin; turn it into a framework error
  // here, while the library is certainly still loaded.
  try {
    obj = f->create(opts, ctx);
  } catch (const Error&) {
    throw;  // saelab's own error types live in the framework and carry their context already
  } catch (const std::exception& e) {
    throw PluginError(
        cat(kind, " plugin '", name, "' (", f->library.file.string(), ") failed to initialise: ", e.what()));
  } catch (...) {
    throw PluginError(cat(kind, " plugin '", name, "' (", f->library.file.string(),
                          ") threw a non-standard exception while initialising"));
  }
  if (!obj) throw PluginError(cat(kind, " plugin '", name, "' returned no object"));
  // Keep the library loaded for as long as the object lives: the holder releases the object
  // first (members die in reverse order), then its reference to the library.
  struct Holder {
    std::shared_ptr<void> library;
    std::shared_ptr<void> object;
  };
  auto holder = std::make_shared<Holder>(Holder{f->library.handle, obj});
  return std::shared_ptr<void>(holder, obj.get());
}

}  // namespace saelab
