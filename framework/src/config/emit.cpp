// Options -> YAML: the resolved snapshot written into every run directory.
#include <yaml-cpp/yaml.h>

#include "saelab/config/config.hpp"

namespace saelab {
namespace {

YAML::Node options_node(const Options& options, const OptionSchema& schema, const Registry& registry);

YAML::Node plugin_node(const PluginRef& ref, const std::string& kind, const Registry& registry) {
  YAML::Node n(YAML::NodeType::Map);
  n["plugin"] = ref.plugin;
  if (const FactoryInfo* f = registry.find(kind, ref.plugin)) {
    YAML::Node body = options_node(*ref.options, f->schema, registry);
    for (auto it = body.begin(); it != body.end(); ++it) n[it->first.Scalar()] = it->second;
  }
  return n;
}

YAML::Node value_node(const Options::Entry& e, const OptionSpec& spec, const Registry& registry) {
  if (e.is_auto) return YAML::Node("auto");
  if (spec.type == OptionType::Plugin) {
    if (e.plugins.empty()) return YAML::Node();
    return plugin_node(e.plugins.front(), spec.plugin_kind, registry);
  }
  if (spec.type == OptionType::PluginList) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& p : e.plugins) list.push_back(plugin_node(p, spec.plugin_kind, registry));
    return list;
  }
  return std::visit(
      [](const auto& v) -> YAML::Node {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return YAML::Node();
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          YAML::Node list(YAML::NodeType::Sequence);
          for (const auto& s : v) list.push_back(s);
          return list;
        } else {
          return YAML::Node(v);
        }
      },
      e.value);
}

YAML::Node options_node(const Options& options, const OptionSchema& schema, const Registry& registry) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& spec : schema.specs()) {
    if (!options.has(spec.key)) continue;
    YAML::Node value = value_node(options.entries().at(spec.key), spec, registry);
    std::vector<std::string> parts;
    std::size_t start = 0, dot;
    while ((dot = spec.key.find('.', start)) != std::string::npos) {
      parts.push_back(spec.key.substr(start, dot - start));
      start = dot + 1;
    }
    YAML::Node cur = root;
    for (const auto& p : parts) {
      if (!cur[p]) cur[p] = YAML::Node(YAML::NodeType::Map);
      cur.reset(cur[p]);
    }
    cur[spec.key.substr(start)] = value;
  }
  return root;
}

}  // namespace

std::string options_to_yaml(const Options& options, const OptionSchema& schema, const Registry& registry) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << options_node(options, schema, registry);
  return std::string(out.c_str()) + "\n";
}

}  // namespace saelab
