#include <iostream>

#include "cli_util.hpp"
#include "saelab/compare/compare.hpp"
#include "saelab/config/config.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/stages/sweep.hpp"

namespace saelab::cli {

int cmd_sweep(const Args& args) {
  po::options_description desc("options");
  std::vector<std::string> sets, grids;
  std::string file, out;
  desc.add_options()("file", po::value(&file)->required(), "experiment YAML file")(
      "grid", po::value(&grids)->composing(), "an axis of the grid: key.path=v1,v2,... (repeatable)")(
      "set", po::value(&sets)->composing(), "override an option for every run: key.path=value (repeatable)")(
      "out", po::value(&out), "sweep directory (default runs/<name>-sweep)")(
      "resume", "continue a sweep directory: the harvest, unfinished runs, failed runs")(
      "force", "with --resume: accept a changed configuration");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, "sweep FILE --grid key=v1,v2 [--grid ...] [options]")) return 0;
  SweepRequest req;
  req.config_file = file;
  for (const auto& s : sets) req.overrides.push_back(parse_override(s));
  for (const auto& g : grids) req.grid.push_back(parse_grid_axis(g));
  req.out_dir = out;
  req.resume = vm.count("resume") > 0;
  req.force = vm.count("force") > 0;
  const auto sweep = run_sweep(req);
  std::cout << std::filesystem::path(sweep["harvest"].get<std::string>()).parent_path().string() << "\n";
  return 0;
}

int cmd_compare(const Args& args) {
  po::options_description desc("options");
  std::vector<std::string> runs;
  std::string out;
  desc.add_options()("runs", po::value(&runs)->composing(), "run or sweep directories")(
      "out", po::value(&out),
      "where the plots go (default: the sweep's compare/ when one sweep is given, else ./compare)");
  po::positional_options_description pos;
  pos.add("runs", -1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, "compare RUN_OR_SWEEP... [--out DIR]")) return 0;
  std::vector<std::filesystem::path> paths(runs.begin(), runs.end());
  const auto metrics = collect_runs(paths);
  std::filesystem::path dir = out;
  if (dir.empty())
    dir = paths.size() == 1 && std::filesystem::exists(paths[0] / "sweep.json") ? paths[0] / "compare"
                                                                                : "compare";
  std::cout << comparison_table(metrics);
  const auto files = write_frontier_plots(metrics, dir);
  write_file_atomic(dir / "compare.json", comparison_json(metrics).dump(2) + "\n");
  for (const auto& f : files) std::cout << "wrote " << f.string() << "\n";
  std::cout << "wrote " << (dir / "compare.json").string() << "\n";
  return 0;
}

}  // namespace saelab::cli
