#pragma once
// Experiment files: YAML in, validated typed Options out.
//
// An experiment is one YAML mapping whose keys are declared by the experiment schema (sections
// `source`, `corpus`, `harvest`, `store`, `train`, `evaluate`, `report`, and run-wide keys). A key
// whose schema type is a plugin holds `{plugin: <name>, <that plugin's options>...}` (or just the
// name), validated against the plugin's own schema from the registry.
//
// Everything is validated here, once: unknown keys, wrong types, out-of-range values, missing
// required options and unknown plugin names are ConfigErrors that name file:line:column, the key
// path and what is allowed. Files over 1 MiB, files with several YAML documents and input nested
// deeper than the parser's guard are refused.
#include <filesystem>
#include <string>
#include <vector>

#include "saelab/core/export.hpp"
#include "saelab/core/options.hpp"
#include "saelab/core/registry.hpp"

namespace saelab {

inline constexpr std::uintmax_t kMaxConfigBytes = 1 << 20;

// `--set key.path=value`: value is parsed as YAML (so numbers, booleans and lists work).
struct SAELAB_API ConfigOverride {
  std::string key_path;
  std::string value;
};
SAELAB_API ConfigOverride parse_override(const std::string& arg);  // throws UsageError

struct SAELAB_API ExperimentConfig {
  std::filesystem::path file;
  Options options;       // the whole experiment; sections are dotted keys ("train.lr")
  std::string resolved;  // YAML of every option with defaults filled in (the run's snapshot)
  std::string hash;      // SHA-256 of `resolved`
};

// Validates YAML text against `schema`. `file` is used in messages only.
SAELAB_API ExperimentConfig parse_experiment(const std::string& yaml_text, const std::string& file,
                                             const OptionSchema& schema, const Registry& registry,
                                             const std::vector<ConfigOverride>& overrides = {});

// Reads the file (refusing > kMaxConfigBytes) and parses it.
SAELAB_API ExperimentConfig load_experiment(const std::filesystem::path& file, const OptionSchema& schema,
                                            const Registry& registry,
                                            const std::vector<ConfigOverride>& overrides = {});

// Emits `options` (and nested plugin options) as YAML, in schema order.
SAELAB_API std::string options_to_yaml(const Options& options, const OptionSchema& schema,
                                       const Registry& registry);

// "did you mean" helper shared by every place that lists allowed names.
SAELAB_API std::string closest_name(const std::string& wrong, const std::vector<std::string>& names);

}  // namespace saelab
