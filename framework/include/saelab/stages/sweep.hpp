#pragma once
// Sweeps: the cross product of a few options' values, run as sibling runs that share one harvest.
//
// Sweep directory layout:
//   sweep.json   the file, the grid and every run: name, directory, settings, status, summary
//                (rewritten after each run, so it always says how far the sweep got)
//   harvest/     the shared harvest: a run directory that holds only the harvest stage (store/)
//   <name>/      one run directory per point of the grid, with harvest.store_dir set to
//                harvest/store and the harvest's record copied into its run.json (evaluation and
//                the report skip the harvested sequences as in a single run)
// A point's name is each setting as <last key part>-<value>, joined by "_":
//   --grid train.losses.1.coefficient=1,2 --grid train.sae.d_sae=4096  ->  coefficient-1_d_sae-4096
// Grid keys under source, corpus, harvest or store would change what is harvested and are refused.
// Every point's configuration is validated before anything runs. --resume continues: the harvest
// where it stopped, each run's stages (training from its last checkpoint); a run that fails is
// recorded as failed and the sweep goes on to the next.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/config/config.hpp"
#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API GridAxis {
  std::string key;
  std::vector<std::string> values;
};
// "key=v1,v2,..." (values as YAML scalars, as --set takes them). Throws UsageError.
SAELAB_API GridAxis parse_grid_axis(const std::string& arg);

struct SAELAB_API SweepPoint {
  std::string name;
  std::vector<ConfigOverride> settings;  // one per axis
};
// The cross product, first axis slowest. Throws UsageError on repeated keys or names.
SAELAB_API std::vector<SweepPoint> sweep_points(const std::vector<GridAxis>& grid);

struct SAELAB_API SweepRequest {
  std::filesystem::path config_file;
  std::vector<ConfigOverride> overrides;  // --set, for every run
  std::vector<GridAxis> grid;
  std::filesystem::path out_dir;  // empty: runs/<name>-sweep
  bool resume = false;
  bool force = false;
};

// Runs the sweep; returns sweep.json's content. Throws UsageError/ConfigError before running
// anything when the request or a point's configuration is wrong.
SAELAB_API nlohmann::json run_sweep(const SweepRequest& request);

}  // namespace saelab
