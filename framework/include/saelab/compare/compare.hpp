#pragma once
// saelab compare: runs' evaluation metrics side by side and the sparsity–fidelity frontier.
//
// Inputs are run directories (each with eval.json) or sweep directories (sweep.json), which stand
// for their runs. A run's label is its sweep settings ("coefficient=2") when a sweep lists it,
// else its directory's name. Plots, each point labelled:
//   frontier_explained_variance   L0 against explained variance
//   frontier_ce_loss_score        L0 against CE loss recovered (ce_loss_score)
//   dead_fraction                 each run's share of dead latents
// written as <name>.svg and, rendered from the same SVG by librsvg, <name>.png.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API RunMetrics {
  std::string label;
  std::filesystem::path dir;
  std::optional<double> l0, explained_variance, ce_loss_score, kl_div_spliced, dead_fraction,
      sae_top_1_test_accuracy, mse;
  std::int64_t d_sae = 0;
};

// Reads each run's eval.json (a sweep directory: every run it lists that has one). Throws
// UsageError naming the path when it is neither, FormatError when eval.json is not JSON.
SAELAB_API std::vector<RunMetrics> collect_runs(const std::vector<std::filesystem::path>& paths);

// A fixed-width table, one row per run.
SAELAB_API std::string comparison_table(const std::vector<RunMetrics>& runs);

struct SAELAB_API ScatterPoint {
  double x = 0, y = 0;
  std::string label;
};
struct SAELAB_API ScatterPlot {
  std::string title, x_label, y_label;
  std::vector<ScatterPoint> points;
  bool connect = true;  // a line through the points in x order (a frontier)
  bool markers = true;  // a labelled dot per point (false for long curves)
};
// A self-contained SVG document (no scripts, no external references).
SAELAB_API std::string scatter_svg(const ScatterPlot& plot);
struct SAELAB_API HistogramPlot {
  std::string title, x_label, y_label;
  std::vector<double> edges;   // [bins + 1], increasing
  std::vector<double> counts;  // [bins]
};
// A self-contained SVG bar chart; every bar has a <title> with its range and count.
SAELAB_API std::string histogram_svg(const HistogramPlot& plot);
// The SVG rendered to a PNG file at its own size. Throws Error naming the file on failure.
SAELAB_API void write_svg_as_png(const std::string& svg, const std::filesystem::path& png);

// Writes the three plots (.svg and .png) into dir; returns the files written.
SAELAB_API std::vector<std::filesystem::path> write_frontier_plots(const std::vector<RunMetrics>& runs,
                                                                   const std::filesystem::path& dir);
SAELAB_API nlohmann::json comparison_json(const std::vector<RunMetrics>& runs);

}  // namespace saelab
