#include <iostream>

#include "cli_util.hpp"
#include "saelab/config/config.hpp"
#include "saelab/config/experiment.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/stages/runner.hpp"

namespace saelab::cli {

namespace {
std::string stage_of(const std::string& verb) {
  return verb == "eval" ? "evaluate" : verb;
}
}  // namespace

int cmd_run(const std::string& verb, const Args& args) {
  po::options_description desc("options");
  std::vector<std::string> sets;
  std::string file, out, sae;
  desc.add_options()("file", po::value(&file)->required(), "experiment YAML file")(
      "set", po::value(&sets)->composing(), "override an option: key.path=value (repeatable)")(
      "out", po::value(&out), "run directory (default runs/<name>)")(
      "overwrite", "start over in an existing run directory (or redo this stage)")(
      "resume", "continue an existing run directory (or this stage)")(
      "force", "with --resume: accept a changed configuration");
  if (verb == "eval" || verb == "report")
    desc.add_options()("sae", po::value(&sae), "SAELens directory to use instead of the run's trained SAE");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, verb + " FILE [options]")) return 0;
  if (vm.count("overwrite") && vm.count("resume"))
    throw UsageError("--overwrite and --resume contradict each other; pass one");

  RunRequest req;
  req.config_file = file;
  for (const auto& s : sets) req.overrides.push_back(parse_override(s));
  req.out_dir = out;
  req.overwrite = vm.count("overwrite") > 0;
  req.resume = vm.count("resume") > 0;
  req.force = vm.count("force") > 0;
  req.sae_dir = sae;
  if (verb != "run") req.stages = {stage_of(verb)};
  auto dir = run_experiment(req);
  std::cout << dir.string() << "\n";
  return 0;
}

int cmd_validate(const Args& args) {
  po::options_description desc("options");
  std::vector<std::string> sets;
  std::string file;
  desc.add_options()("file", po::value(&file)->required(), "experiment YAML file")(
      "set", po::value(&sets)->composing(), "override an option: key.path=value (repeatable)")(
      "print", "print the resolved configuration (every option, defaults filled in)");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, "validate FILE [--set key=value ...] [--print]")) return 0;
  std::vector<ConfigOverride> overrides;
  for (const auto& s : sets) overrides.push_back(parse_override(s));
  ExperimentConfig cfg = load_experiment(file, experiment_schema(), plugin_registry(), overrides);
  (void)run_settings(cfg.options);  // cross-field checks
  if (vm.count("print"))
    std::cout << cfg.resolved;
  else
    std::cout << file << ": ok\n";
  return 0;
}

}  // namespace saelab::cli
