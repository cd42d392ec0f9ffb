// Hook selection and per-hook store directories (hook_stores.hpp).
#include "stages/hook_stores.hpp"

#include <algorithm>
#include <optional>

#include "saelab/core/error.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

// '*' matches a run of characters without '.'.
bool glob_match(const std::string& pattern, std::size_t p, const std::string& name, std::size_t n) {
  while (p < pattern.size()) {
    if (pattern[p] == '*') {
      for (std::size_t end = n;; ++end) {
        if (glob_match(pattern, p + 1, name, end)) return true;
        if (end >= name.size() || name[end] == '.') return false;
      }
    }
    if (n >= name.size() || pattern[p] != name[n]) return false;
    ++p, ++n;
  }
  return n == name.size();
}

std::string some(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 12; ++i) s += (s.empty() ? "" : ", ") + names[i];
  if (names.size() > 12) s += cat(", ... (", names.size(), " in all)");
  return s.empty() ? std::string("(none)") : s;
}

bool by_layer(const std::string& a, const std::string& b) {
  auto la = hook_layer_from_name(a), lb = hook_layer_from_name(b);
  if (la.value_or(-1) != lb.value_or(-1)) return la.value_or(-1) < lb.value_or(-1);
  return a < b;
}

}  // namespace

std::vector<std::string> match_hooks(const std::vector<std::string>& patterns,
                                     const std::vector<std::string>& available, const Options& o,
                                     const std::string& key) {
  std::vector<std::string> out;
  for (const auto& pattern : patterns) {
    std::size_t found = 0;
    for (const auto& name : available) {
      if (!glob_match(pattern, 0, name, 0)) continue;
      ++found;
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    if (found == 0)
      o.fail(key,
             cat("'", pattern, "' matches no hook; available: ", some(available),
                 pattern.find('*') == std::string::npos ? "" : " ('*' stands for any text without a '.')"));
  }
  std::sort(out.begin(), out.end(), by_layer);
  return out;
}

bool multi_hook_harvest(const Options& o) {
  return !o.strings("harvest.hooks").empty();
}

std::vector<std::string> harvest_hooks(const Options& o, const SourceInfo& info) {
  std::vector<std::string> available;
  for (const auto& [name, d] : info.hooks) available.push_back(name);
  if (!multi_hook_harvest(o)) return match_hooks({o.string("harvest.hook")}, available, o, "harvest.hook");
  if (o.is_set("harvest.hook"))
    o.fail("harvest.hook", "is set together with harvest.hooks; give the hooks in harvest.hooks only");
  return match_hooks(o.strings("harvest.hooks"), available, o, "harvest.hooks");
}

std::vector<std::string> stored_hooks(ActivationStore& store, const fs::path& store_dir) {
  if (fs::exists(store_dir / "manifest.json")) return {store.meta(store_dir).hook};
  std::vector<std::string> hooks;
  std::error_code ec;
  if (!fs::is_directory(store_dir, ec)) return hooks;
  for (const auto& entry : fs::directory_iterator(store_dir)) {
    if (entry.is_directory() && fs::exists(entry.path() / "manifest.json"))
      hooks.push_back(store.meta(entry.path()).hook);
  }
  std::sort(hooks.begin(), hooks.end(), by_layer);
  return hooks;
}

fs::path hook_store_dir(ActivationStore& store, const fs::path& store_dir, const std::string& hook) {
  if (fs::exists(store_dir / "manifest.json")) {
    const std::string own = store.meta(store_dir).hook;
    if (hook.empty() || hook == own) return store_dir;
    throw UsageError(cat("the activation store '", store_dir.string(), "' holds hook '", own, "' only, not '",
                         hook, "'; harvest both with harvest.hooks: [", own, ", ", hook, "]"));
  }
  const std::vector<std::string> hooks = stored_hooks(store, store_dir);
  SAELAB_CHECK(!hooks.empty(), UsageError, "no activation store at '", store_dir.string(),
               "'; run the harvest stage first (saelab harvest FILE) or point harvest.store_dir at an "
               "existing store");
  if (hook.empty()) {
    SAELAB_CHECK(
        hooks.size() == 1, UsageError, "the activation store '", store_dir.string(), "' holds ", hooks.size(),
        " hooks (", some(hooks),
        "); say which to train on with train.input_hook, or train one SAE per hook with train.hooks");
    return store_dir / hooks.front();
  }
  const fs::path dir = store_dir / hook;
  SAELAB_CHECK(std::find(hooks.begin(), hooks.end(), hook) != hooks.end(), UsageError,
               "the activation store '", store_dir.string(), "' has no hook '", hook, "'; it holds ",
               some(hooks));
  return dir;
}

}  // namespace saelab
