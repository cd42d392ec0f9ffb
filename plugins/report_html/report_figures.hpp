#pragma once
// The report's charts as SVG files (and PNG for papers): the log10 feature-density histogram,
// training curves from metrics.jsonl, and latents' activation histograms.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/features/collector.hpp"

namespace saelab::report {

struct Figure {
  std::string title;
  std::string file;  // relative to the report directory: "figures/density.svg"
};

// counts [d_sae]: how many of `tokens` each latent fired on. Writes figures/density.svg.
Figure write_density_figure(const std::vector<std::int64_t>& counts, std::int64_t tokens,
                            const std::filesystem::path& dir, bool png);

// One chart per numeric metric of metrics.jsonl (loss, mse, l0, ...) against the step; none when
// the file is missing or holds fewer than two steps. Unparseable lines are skipped with a warning
// naming the file and line.
std::vector<Figure> write_training_figures(const std::filesystem::path& metrics_jsonl,
                                           const std::filesystem::path& dir, bool png);

// figures/latent-<id>.png: the latent's activation histogram.
void write_latent_png(std::int64_t id, const FeatureStats& s, const std::filesystem::path& dir);

}  // namespace saelab::report
