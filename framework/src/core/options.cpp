#include "saelab/core/options.hpp"

#include <cmath>
#include <sstream>

namespace saelab {

std::string SourceLoc::str() const {
  if (file.empty()) return "<default>";
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  if (line > 0 && column > 0) s += ":" + std::to_string(column);
  return s;
}

const char* option_type_name(OptionType t) {
  switch (t) {
    case OptionType::Bool:
      return "boolean";
    case OptionType::Int:
      return "integer";
    case OptionType::Float:
      return "number";
    case OptionType::String:
      return "string";
    case OptionType::Enum:
      return "choice";
    case OptionType::StringList:
      return "list of strings";
    case OptionType::Plugin:
      return "plugin";
    case OptionType::PluginList:
      return "list of plugins";
  }
  return "?";
}

namespace {
std::string format_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}
}  // namespace

std::string OptionSpec::default_str() const {
  if (type == OptionType::Plugin) return default_plugin.empty() ? "(required)" : default_plugin;
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return required ? "(required)" : "(none)";
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return allow_auto && v < 0 ? "auto" : std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return format_number(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v.empty() ? "\"\"" : v;
        } else {
          return "[" + join(v, ", ") + "]";
        }
      },
      default_value);
}

std::string OptionSpec::range_str() const {
  std::vector<std::string> parts;
  if (!choices.empty()) parts.push_back("one of " + join(choices, ", "));
  if (min) parts.push_back(std::string(min_exclusive ? "> " : "≥ ") + format_number(*min));
  if (max) parts.push_back("≤ " + format_number(*max));
  if (allow_auto) parts.push_back("or auto");
  if (!plugin_kind.empty()) parts.push_back("a " + plugin_kind + " plugin");
  return join(parts, ", ");
}

namespace {
OptionSpec make_spec(const std::string& key, OptionType type, OptionValue def, const std::string& desc) {
  OptionSpec s;
  s.key = key;
  s.type = type;
  s.default_value = std::move(def);
  s.description = desc;
  return s;
}
}  // namespace

OptionSpec& OptionSchema::add(OptionSpec spec) {
  for (auto& s : specs_) {
    if (s.key == spec.key) throw Error(cat("option '", spec.key, "' is declared twice in one schema"));
  }
  specs_.push_back(std::move(spec));
  return specs_.back();
}

OptionSpec& OptionSchema::boolean(const std::string& key, bool def, const std::string& desc) {
  return add(make_spec(key, OptionType::Bool, def, desc));
}
OptionSpec& OptionSchema::integer(const std::string& key, std::int64_t def, const std::string& desc) {
  return add(make_spec(key, OptionType::Int, def, desc));
}
OptionSpec& OptionSchema::real(const std::string& key, double def, const std::string& desc) {
  return add(make_spec(key, OptionType::Float, def, desc));
}
OptionSpec& OptionSchema::string(const std::string& key, const std::string& def, const std::string& desc) {
  return add(make_spec(key, OptionType::String, def, desc));
}
OptionSpec& OptionSchema::choice(const std::string& key, const std::string& def,
                                 std::vector<std::string> choices, const std::string& desc) {
  OptionSpec s = make_spec(key, OptionType::Enum, def, desc);
  s.choices = std::move(choices);
  return add(std::move(s));
}
OptionSpec& OptionSchema::strings(const std::string& key, std::vector<std::string> def,
                                  const std::string& desc) {
  return add(make_spec(key, OptionType::StringList, std::move(def), desc));
}
OptionSpec& OptionSchema::plugin(const std::string& key, const std::string& kind, const std::string& def,
                                 const std::string& desc) {
  OptionSpec s = make_spec(key, OptionType::Plugin, std::monostate{}, desc);
  s.plugin_kind = kind;
  s.default_plugin = def;
  s.required = def.empty();
  return add(std::move(s));
}
OptionSpec& OptionSchema::plugins(const std::string& key, const std::string& kind,
                                  std::vector<std::string> def, const std::string& desc) {
  OptionSpec s = make_spec(key, OptionType::PluginList, std::move(def), desc);
  s.plugin_kind = kind;
  return add(std::move(s));
}

void OptionSchema::add_section(const std::string& prefix, const OptionSchema& section) {
  for (OptionSpec spec : section.specs()) {
    spec.key = prefix + "." + spec.key;
    add(std::move(spec));
  }
}

const OptionSpec* OptionSchema::find(const std::string& key) const {
  for (auto& s : specs_) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

bool OptionSchema::has_prefix(const std::string& prefix) const {
  for (auto& s : specs_) {
    if (s.key.size() > prefix.size() && s.key.compare(0, prefix.size(), prefix) == 0 &&
        s.key[prefix.size()] == '.')
      return true;
  }
  return false;
}

// ---- Options ----

const Options::Entry& Options::entry(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end())
    throw Error(cat("internal: option '", key_path(key), "' is not declared in its schema"));
  return it->second;
}

namespace {
template <class T>
const T& get_as(const Options& o, const Options::Entry& e, const std::string& key, const char* want) {
  if (auto p = std::get_if<T>(&e.value)) return *p;
  throw Error(cat("internal: option '", o.key_path(key), "' read as ", want,
                  " but its schema declares another type"));
}
}  // namespace

bool Options::boolean(const std::string& key) const {
  return get_as<bool>(*this, entry(key), key, "boolean");
}
std::int64_t Options::integer(const std::string& key) const {
  return get_as<std::int64_t>(*this, entry(key), key, "integer");
}
double Options::real(const std::string& key) const {
  const Entry& e = entry(key);
  if (auto p = std::get_if<std::int64_t>(&e.value)) return static_cast<double>(*p);
  return get_as<double>(*this, e, key, "number");
}
const std::string& Options::string(const std::string& key) const {
  return get_as<std::string>(*this, entry(key), key, "string");
}
const std::vector<std::string>& Options::strings(const std::string& key) const {
  return get_as<std::vector<std::string>>(*this, entry(key), key, "list of strings");
}
const PluginRef& Options::plugin(const std::string& key) const {
  const Entry& e = entry(key);
  if (e.plugins.size() != 1) throw Error(cat("internal: option '", key_path(key), "' holds no plugin"));
  return e.plugins.front();
}
const std::vector<PluginRef>& Options::plugins(const std::string& key) const {
  return entry(key).plugins;
}
bool Options::is_auto(const std::string& key) const {
  return entry(key).is_auto;
}
bool Options::is_set(const std::string& key) const {
  return !entry(key).from_default;
}

SourceLoc Options::where(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.from_default) return loc_;
  return it->second.loc;
}

std::string Options::key_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

Options Options::section(const std::string& prefix) const {
  Options out(key_path(prefix), loc_);
  const std::string p = prefix + ".";
  for (const auto& [key, e] : entries_) {
    if (key.compare(0, p.size(), p) == 0) out.set(key.substr(p.size()), e);
  }
  return out;
}

void Options::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(cat(where(key).str(), ": ", key_path(key), ": ", message));
}

Options default_options(const OptionSchema& schema, const std::string& path) {
  Options o(path, SourceLoc{});
  for (const auto& spec : schema.specs()) {
    Options::Entry e;
    e.value = spec.default_value;
    e.is_auto = spec.allow_auto && spec.type == OptionType::Int &&
                std::holds_alternative<std::int64_t>(spec.default_value) &&
                std::get<std::int64_t>(spec.default_value) < 0;
    o.set(spec.key, std::move(e));
  }
  return o;
}

}  // namespace saelab
