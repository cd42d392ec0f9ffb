#pragma once
// Typed option schemas and values.
//
// Every configurable thing (a stage of the framework or a plugin) declares an OptionSchema: each
// option's key, type, default, bounds and a one-line description. The YAML loader validates a file
// against the schema once and produces Options: typed values that remember the file, line and
// column they came from, so errors found later (cross-field checks in a plugin) still point at the
// line to fix. Algorithms never see YAML.
//
// Keys may be dotted ("corpus.path"): a nested YAML map fills them.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "saelab/core/error.hpp"
#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API SourceLoc {
  std::string file;         // config file, or "--set" for a command-line override, or "" for a default
  int line = 0;             // 1-based; 0 when unknown
  int column = 0;           // 1-based; 0 when unknown
  std::string str() const;  // "file:line:col" (or what is known of it)
};

enum class OptionType { Bool, Int, Float, String, Enum, StringList, Plugin, PluginList };

SAELAB_API const char* option_type_name(OptionType t);

using OptionValue =
    std::variant<std::monostate, bool, std::int64_t, double, std::string, std::vector<std::string>>;

class Options;

// A plugin slot holds the name of a plugin of `plugin_kind` and that plugin's own options.
struct SAELAB_API PluginRef {
  std::string plugin;
  SourceLoc loc;
  std::shared_ptr<Options> options;  // validated against the plugin's schema
};

struct SAELAB_API OptionSpec {
  std::string key;
  OptionType type = OptionType::String;
  OptionValue default_value;  // monostate: no default (then `required` must be true)
  std::string description;
  bool required = false;
  bool allow_auto = false;  // the literal `auto` is accepted in place of a value
  std::optional<double> min, max;
  bool min_exclusive = false;
  std::vector<std::string> choices;  // Enum
  std::string plugin_kind;           // Plugin, PluginList
  std::string default_plugin;        // Plugin: used when the slot is absent

  // Builder helpers, so schemas read as one line per option.
  OptionSpec& at_least(double v) {
    min = v;
    min_exclusive = false;
    return *this;
  }
  OptionSpec& above(double v) {
    min = v;
    min_exclusive = true;
    return *this;
  }
  OptionSpec& at_most(double v) {
    max = v;
    return *this;
  }
  OptionSpec& autoable() {
    allow_auto = true;
    return *this;
  }
  OptionSpec& require() {
    required = true;
    return *this;
  }

  std::string default_str() const;  // as written in docs/config.md
  std::string range_str() const;    // "≥ 1", "one of a, b", "" if unconstrained
};

class SAELAB_API OptionSchema {
 public:
  OptionSpec& boolean(const std::string& key, bool def, const std::string& desc);
  OptionSpec& integer(const std::string& key, std::int64_t def, const std::string& desc);
  OptionSpec& real(const std::string& key, double def, const std::string& desc);
  OptionSpec& string(const std::string& key, const std::string& def, const std::string& desc);
  OptionSpec& choice(const std::string& key, const std::string& def, std::vector<std::string> choices,
                     const std::string& desc);
  OptionSpec& strings(const std::string& key, std::vector<std::string> def, const std::string& desc);
  // A slot naming one plugin of `kind`; `def` is used when the key is absent ("" = required).
  OptionSpec& plugin(const std::string& key, const std::string& kind, const std::string& def,
                     const std::string& desc);
  // A list of plugins of `kind`, each `{plugin: name, ...options}`.
  OptionSpec& plugins(const std::string& key, const std::string& kind, std::vector<std::string> def,
                      const std::string& desc);

  // Adds every option of `section` under `prefix.` (a stage embedding another component's schema).
  void add_section(const std::string& prefix, const OptionSchema& section);

  const std::vector<OptionSpec>& specs() const { return specs_; }
  const OptionSpec* find(const std::string& key) const;
  // Keys starting with `prefix.`; used to accept nested maps.
  bool has_prefix(const std::string& prefix) const;

 private:
  OptionSpec& add(OptionSpec spec);
  std::vector<OptionSpec> specs_;
};

// Validated values for one schema. Accessors throw ConfigError on a type mismatch, which is a bug
// in the caller (the schema and the accessor disagree), reported with the key.
class SAELAB_API Options {
 public:
  struct Entry {
    OptionValue value;
    SourceLoc loc;
    bool is_auto = false;
    bool from_default = true;
    std::vector<PluginRef> plugins;  // Plugin (one) and PluginList slots
  };

  Options() = default;
  Options(std::string path, SourceLoc loc) : path_(std::move(path)), loc_(std::move(loc)) {}

  bool boolean(const std::string& key) const;
  std::int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  const std::string& string(const std::string& key) const;
  const std::vector<std::string>& strings(const std::string& key) const;
  const PluginRef& plugin(const std::string& key) const;
  const std::vector<PluginRef>& plugins(const std::string& key) const;
  bool is_auto(const std::string& key) const;
  bool is_set(const std::string& key) const;  // written in the file (or --set), not defaulted
  bool has(const std::string& key) const { return entries_.count(key) != 0; }

  // Where a value came from, and the full key path ("train.sae.d_sae") for messages.
  SourceLoc where(const std::string& key) const;
  std::string key_path(const std::string& key) const;
  const std::string& path() const { return path_; }
  const SourceLoc& loc() const { return loc_; }

  // The options under `prefix.`, keys stripped of it, for code that takes one section's Options.
  Options section(const std::string& prefix) const;

  // Throws ConfigError "file:line:col: key.path: message". For checks that span options.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  void set(const std::string& key, Entry e) { entries_[key] = std::move(e); }
  // Sets `key` as if a file had given it explicitly (not a default, not auto), at `loc`.
  void set_given(const std::string& key, OptionValue value, SourceLoc loc = {}) {
    Entry e;
    e.value = std::move(value);
    e.loc = std::move(loc);
    e.from_default = false;
    set(key, std::move(e));
  }
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  const Entry& entry(const std::string& key) const;
  std::string path_;  // "train.sae" for the options of the plugin in that slot
  SourceLoc loc_;
  std::map<std::string, Entry> entries_;
};

// Fills every key of `schema` with its default (for code paths that build options without YAML).
SAELAB_API Options default_options(const OptionSchema& schema, const std::string& path);

}  // namespace saelab
