// YAML -> Options validation. The only file in saelab that walks YAML nodes for experiments.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include "saelab/config/config.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab {
namespace {

struct Ctx {
  std::string file;
  const Registry& registry;
  std::set<std::string> overridden;  // full key paths set with --set
};

SourceLoc loc_of(const Ctx& c, const YAML::Node& n, const std::string& key_path) {
  for (const auto& o : c.overridden) {
    if (key_path == o || key_path.rfind(o + ".", 0) == 0) return SourceLoc{"--set " + o, 0, 0};
  }
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return SourceLoc{c.file, 0, 0};
  return SourceLoc{c.file, m.line + 1, m.column + 1};
}

[[noreturn]] void fail(const SourceLoc& loc, const std::string& key_path, const std::string& msg) {
  throw ConfigError(cat(loc.str(), ": ", key_path.empty() ? "" : key_path + ": ", msg));
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "an undefined value";
  }
}

std::string scalar_of(const Ctx& c, const YAML::Node& n, const std::string& path, const char* want) {
  if (!n.IsScalar()) fail(loc_of(c, n, path), path, cat("expected ", want, ", got ", node_kind(n)));
  return n.Scalar();
}

bool parse_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    out = false;
    return true;
  }
  return false;
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno == 0 && std::isfinite(out);
}

bool parse_int(const std::string& raw, std::int64_t& out) {
  std::string s;
  for (char ch : raw) {
    if (ch != '_') s.push_back(ch);  // 300_000_000 reads as in Python
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc() && p == s.data() + s.size()) return true;
  double d;  // 3e8, 1.5e6: fine when integral
  if (parse_double(s, d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
    out = static_cast<std::int64_t>(d);
    return true;
  }
  return false;
}

void check_range(const Ctx& c, const OptionSpec& spec, double v, const YAML::Node& n,
                 const std::string& path) {
  bool low = spec.min && (spec.min_exclusive ? v <= *spec.min : v < *spec.min);
  bool high = spec.max && v > *spec.max;
  if (low || high)
    fail(loc_of(c, n, path), path,
         cat("value ", n.Scalar(), " is out of range; allowed: ", spec.range_str()));
}

Options parse_map(const Ctx& c, const YAML::Node& map, const OptionSchema& schema, const std::string& path,
                  const SourceLoc& where, bool plugin_body = false);

PluginRef parse_plugin(const Ctx& c, const YAML::Node& n, const OptionSpec& spec, const std::string& path) {
  PluginRef ref;
  ref.loc = loc_of(c, n, path);
  YAML::Node body;
  if (n.IsScalar()) {
    ref.plugin = n.Scalar();
  } else if (n.IsMap()) {
    const YAML::Node name = n["plugin"];
    if (!name)
      fail(ref.loc, path,
           cat("a ", spec.plugin_kind, " plugin needs a `plugin:` key naming it; available: ", [&] {
             std::string s;
             for (auto& x : c.registry.names(spec.plugin_kind)) s += (s.empty() ? "" : ", ") + x;
             return s.empty() ? std::string("(none loaded)") : s;
           }()));
    ref.plugin = scalar_of(c, name, path + ".plugin", "a plugin name");
    ref.loc = loc_of(c, name, path + ".plugin");
    body = n;
  } else {
    fail(ref.loc, path,
         cat("expected a ", spec.plugin_kind, " plugin (a name, or a mapping with `plugin:`), got ",
             node_kind(n)));
  }
  const FactoryInfo& f = c.registry.require(spec.plugin_kind, ref.plugin, ref.loc, path + ".plugin");
  ref.options = std::make_shared<Options>(
      parse_map(c, body ? body : YAML::Node(YAML::NodeType::Map), f.schema, path, ref.loc, true));
  return ref;
}

void parse_value(const Ctx& c, const YAML::Node& n, const OptionSpec& spec, const std::string& path,
                 Options::Entry& e) {
  e.loc = loc_of(c, n, path);
  e.from_default = false;
  e.is_auto = false;  // the default entry may be `auto`; a value given here replaces it
  if (n.IsNull())
    fail(e.loc, path,
         cat("has no value; expected ", option_type_name(spec.type),
             spec.range_str().empty() ? "" : " (" + spec.range_str() + ")"));
  if (spec.allow_auto && n.IsScalar() && n.Scalar() == "auto") {
    e.is_auto = true;
    e.value = spec.default_value;
    return;
  }
  switch (spec.type) {
    case OptionType::Bool: {
      bool b;
      if (!parse_bool(scalar_of(c, n, path, "true or false"), b))
        fail(e.loc, path, cat("expected true or false, got '", n.Scalar(), "'"));
      e.value = b;
      break;
    }
    case OptionType::Int: {
      std::int64_t v;
      if (!parse_int(scalar_of(c, n, path, "an integer"), v))
        fail(e.loc, path,
             cat("expected an integer", spec.allow_auto ? " or auto" : "", ", got '", n.Scalar(), "'"));
      check_range(c, spec, static_cast<double>(v), n, path);
      e.value = v;
      break;
    }
    case OptionType::Float: {
      double v;
      std::string s = scalar_of(c, n, path, "a number");
      if (!parse_double(s, v)) fail(e.loc, path, cat("expected a number, got '", s, "'"));
      check_range(c, spec, v, n, path);
      e.value = v;
      break;
    }
    case OptionType::String:
      e.value = scalar_of(c, n, path, "a string");
      break;
    case OptionType::Enum: {
      std::string s = scalar_of(c, n, path, "one of the listed choices");
      if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end())
        fail(e.loc, path,
             cat("'", s, "' is not allowed; allowed: ", spec.range_str(), closest_name(s, spec.choices)));
      e.value = s;
      break;
    }
    case OptionType::StringList: {
      std::vector<std::string> v;
      if (n.IsScalar()) {
        v.push_back(n.Scalar());
      } else if (n.IsSequence()) {
        for (std::size_t i = 0; i < n.size(); ++i)
          v.push_back(scalar_of(c, n[i], cat(path, "[", i, "]"), "a string"));
      } else {
        fail(e.loc, path, cat("expected a list of strings, got ", node_kind(n)));
      }
      e.value = v;
      break;
    }
    case OptionType::Plugin:
      e.plugins.push_back(parse_plugin(c, n, spec, path));
      break;
    case OptionType::PluginList: {
      if (!n.IsSequence())
        fail(e.loc, path, cat("expected a list of ", spec.plugin_kind, " plugins, got ", node_kind(n)));
      for (std::size_t i = 0; i < n.size(); ++i)
        e.plugins.push_back(parse_plugin(c, n[i], spec, cat(path, "[", i, "]")));
      break;
    }
  }
}

std::vector<std::string> keys_under(const OptionSchema& schema, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& s : schema.specs()) {
    if (!prefix.empty() && s.key.rfind(prefix + ".", 0) != 0) continue;
    std::string rest = prefix.empty() ? s.key : s.key.substr(prefix.size() + 1);
    rest = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), rest) == out.end()) out.push_back(rest);
  }
  return out;
}

void walk(const Ctx& c, const YAML::Node& map, const OptionSchema& schema, const std::string& prefix,
          const std::string& path, bool plugin_body, Options& out) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) fail(loc_of(c, it->first, path), path, "keys must be plain names");
    const std::string k = it->first.Scalar();
    if (plugin_body && prefix.empty() && k == "plugin") continue;  // read by parse_plugin
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    const std::string full = path.empty() ? key : path + "." + key;
    if (out.has(key) && !out.entries().at(key).from_default)
      fail(loc_of(c, it->first, full), full, "is given twice");
    if (const OptionSpec* spec = schema.find(key)) {
      Options::Entry e = out.entries().at(key);
      e.plugins.clear();
      parse_value(c, it->second, *spec, full, e);
      out.set(key, std::move(e));
    } else if (schema.has_prefix(key)) {
      if (!it->second.IsMap())
        fail(loc_of(c, it->second, full), full,
             cat(
                 "expected a mapping with keys: ",
                 [&] {
                   std::string s;
                   for (auto& x : keys_under(schema, key)) s += (s.empty() ? "" : ", ") + x;
                   return s;
                 }(),
                 "; got ", node_kind(it->second)));
      walk(c, it->second, schema, key, path, false, out);
    } else {
      auto allowed = keys_under(schema, prefix);
      std::string list;
      for (auto& x : allowed) list += (list.empty() ? "" : ", ") + x;
      fail(loc_of(c, it->first, full), full,
           cat("unknown key '", k, "'; allowed here: ", list.empty() ? "(none)" : list,
               closest_name(k, allowed)));
    }
  }
}

Options parse_map(const Ctx& c, const YAML::Node& map, const OptionSchema& schema, const std::string& path,
                  const SourceLoc& where, bool plugin_body) {
  if (!map.IsMap() && !map.IsNull())
    fail(loc_of(c, map, path), path, cat("expected a mapping, got ", node_kind(map)));
  Options out = default_options(schema, path);
  if (map.IsMap()) walk(c, map, schema, "", path, plugin_body, out);
  for (const auto& spec : schema.specs()) {
    const Options::Entry& e = out.entries().at(spec.key);
    const std::string full = path.empty() ? spec.key : path + "." + spec.key;
    if (!e.from_default) continue;
    if (spec.type == OptionType::Plugin) {
      if (spec.default_plugin.empty())
        fail(where, full, cat("is required: name a ", spec.plugin_kind, " plugin"));
      if (c.registry.find(spec.plugin_kind, spec.default_plugin)) {
        Options::Entry d = e;
        d.plugins.push_back(parse_plugin(c, YAML::Node(spec.default_plugin), spec, full));
        d.plugins.back().loc = where;
        out.set(spec.key, std::move(d));
      }
    } else if (spec.type == OptionType::PluginList) {
      Options::Entry d = e;
      for (const auto& name : std::get<std::vector<std::string>>(spec.default_value)) {
        if (!c.registry.find(spec.plugin_kind, name)) continue;
        d.plugins.push_back(parse_plugin(c, YAML::Node(name), spec, full));
        d.plugins.back().loc = where;
      }
      out.set(spec.key, std::move(d));
    } else if (spec.required) {
      fail(where, full,
           cat("is required (", spec.description, "); expected ", option_type_name(spec.type),
               spec.range_str().empty() ? "" : ", " + spec.range_str()));
    }
  }
  return out;
}

void apply_override(YAML::Node root, const ConfigOverride& o) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = o.key_path.find('.', start);
    parts.push_back(o.key_path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  YAML::Node value;
  try {
    value = YAML::Load(o.value);
  } catch (const YAML::Exception& e) {
    throw UsageError(cat("--set ", o.key_path, "=", o.value, ": the value is not valid YAML: ", e.msg));
  }
  std::vector<YAML::Node> chain{root};
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node cur = chain.back();
    YAML::Node next;
    if (cur.IsSequence()) {
      std::size_t idx = 0;
      auto [p, ec] = std::from_chars(parts[i].data(), parts[i].data() + parts[i].size(), idx);
      if (ec != std::errc() || idx >= cur.size())
        throw UsageError(cat("--set ", o.key_path, ": '", parts[i], "' is not an index of that list (it has ",
                             cur.size(), " items)"));
      next = cur[idx];
    } else {
      if (!cur.IsMap() && !cur.IsNull())
        throw UsageError(
            cat("--set ", o.key_path, ": '", parts[i], "' is inside a value that is not a mapping"));
      if (!cur[parts[i]]) cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[parts[i]];
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
}

}  // namespace

ConfigOverride parse_override(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError(cat("--set expects key.path=value, got '", arg, "'"));
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

namespace {

// Notes where documents start and ignores everything else.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {}
};

// Refuses a second document, so that YAML::Load reads the only one; the text never reaches
// YAML::LoadAll. yaml-cpp 0.7 (Debian 12) never consumes a ',' where a block node should start
// (",", "- x\n,"): LoadAll then collects empty documents forever, allocating as it goes. Asking
// for at most two documents always ends.
void check_single_document(const std::string& text, const std::string& file) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts seen;
  while (seen.starts.size() < 2 && parser.HandleNextDocument(seen)) {
  }
  if (seen.starts.size() < 2) return;
  const YAML::Mark& m = seen.starts[1];
  throw ConfigError(
      cat(file, ":", m.line + 1, ":", m.column + 1,
          ": a second YAML document starts here; an experiment file holds exactly one (documents "
          "are separated by ---, and yaml-cpp also reads a stray ',' outside [] or {} as one)"));
}

}  // namespace

ExperimentConfig parse_experiment(const std::string& text, const std::string& file,
                                  const OptionSchema& schema, const Registry& registry,
                                  const std::vector<ConfigOverride>& overrides) {
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(cat(file, ": the file is ", text.size(), " bytes; experiment files are limited to ",
                          kMaxConfigBytes, " bytes (1 MiB)"));
  YAML::Node root;
  try {
    check_single_document(text, file);
    root = YAML::Load(text);  // the one document (Null for an empty file)
  } catch (const YAML::DeepRecursion& e) {
    throw ConfigError(
        cat(file, ":", e.mark.line + 1, ":", e.mark.column + 1,
            ": input is nested too deeply (yaml-cpp's limit); experiment files are a few levels deep"));
  } catch (const YAML::ParserException& e) {
    throw ConfigError(
        cat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg));
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  Ctx c{file, registry, {}};
  for (const auto& o : overrides) {
    apply_override(root, o);
    c.overridden.insert(o.key_path);
  }
  ExperimentConfig cfg;
  cfg.file = file;
  cfg.options = parse_map(c, root, schema, "", SourceLoc{file, 1, 1});
  cfg.resolved = options_to_yaml(cfg.options, schema, registry);
  cfg.hash = sha256_hex(cfg.resolved);
  return cfg;
}

ExperimentConfig load_experiment(const std::filesystem::path& file, const OptionSchema& schema,
                                 const Registry& registry, const std::vector<ConfigOverride>& overrides) {
  std::string text;
  try {
    text = read_file(file, kMaxConfigBytes, "experiment file");
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  return parse_experiment(text, file.string(), schema, registry, overrides);
}

std::string closest_name(const std::string& wrong, const std::vector<std::string>& names) {
  auto dist = [](const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  std::size_t best_d = 3;
  for (const auto& n : names) {
    std::size_t d = dist(wrong, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

}  // namespace saelab
