#include "report_figures.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "saelab/compare/compare.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/log.hpp"

namespace saelab::report {
namespace fs = std::filesystem;

namespace {

void write_chart(const std::string& svg, const fs::path& dir, const std::string& stem, bool png) {
  fs::create_directories(dir / "figures");
  write_file_atomic(dir / "figures" / (stem + ".svg"), svg);
  if (png) write_svg_as_png(svg, dir / "figures" / (stem + ".png"));
}

}  // namespace

Figure write_density_figure(const std::vector<std::int64_t>& counts, std::int64_t tokens, const fs::path& dir,
                            bool png) {
  std::vector<double> logs;
  std::int64_t dead = 0;
  for (auto c : counts) {
    if (c == 0)
      ++dead;
    else
      logs.push_back(std::log10(static_cast<double>(c) / static_cast<double>(tokens)));
  }
  HistogramPlot h;
  h.title = cat("Feature density (", dead, " of ", counts.size(), " latents never fired)");
  h.x_label = "log10(fraction of tokens the latent fires on)";
  h.y_label = "latents";
  const double lo = logs.empty() ? -1.0 : std::floor(*std::min_element(logs.begin(), logs.end()) * 4) / 4;
  const double width = 0.125;
  const auto bins = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((0.0 - lo) / width)));
  for (std::int64_t i = 0; i <= bins; ++i) h.edges.push_back(lo + width * static_cast<double>(i));
  h.counts.assign(static_cast<std::size_t>(bins), 0);
  for (double v : logs)
    ++h.counts[static_cast<std::size_t>(
        std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor((v - lo) / width)), 0, bins - 1))];
  write_chart(histogram_svg(h), dir, "density", png);
  return {h.title, "figures/density.svg"};
}

std::vector<Figure> write_training_figures(const fs::path& metrics_jsonl, const fs::path& dir, bool png) {
  std::vector<Figure> out;
  if (!fs::exists(metrics_jsonl)) return out;
  std::ifstream in(metrics_jsonl);
  std::map<std::string, std::vector<ScatterPoint>> curves;
  std::string line;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      log::warn(metrics_jsonl.string(), ":", n, ": not a JSON object; left out of the training curves");
      continue;
    }
    if (!j.contains("step") || !j["step"].is_number()) continue;  // events, not steps
    const double step = j["step"].get<double>();
    for (const auto& [k, v] : j.items())
      if (k != "step" && k != "tokens" && v.is_number() && std::isfinite(v.get<double>()))
        curves[k].push_back({step, v.get<double>(), ""});
  }
  // The quantities a reader looks for first, then the rest by name; timings (*_s) are not curves.
  std::vector<std::string> keys;
  for (const char* k : {"loss", "mse", "l0", "explained_variance", "dead_fraction"})
    if (curves.count(k)) keys.push_back(k);
  for (const auto& [key, pts] : curves)
    if (std::find(keys.begin(), keys.end(), key) == keys.end() &&
        !(key.size() > 2 && key.compare(key.size() - 2, 2, "_s") == 0))
      keys.push_back(key);
  for (const auto& key : keys) {
    const auto& pts = curves[key];
    if (pts.size() < 2 || out.size() >= 8) continue;
    ScatterPlot p;
    p.title = "Training: " + key;
    p.x_label = "step";
    p.y_label = key;
    p.points = pts;
    p.markers = false;
    std::string stem = "train-";
    for (char c : key) stem += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    write_chart(scatter_svg(p), dir, stem, png);
    out.push_back({p.title, "figures/" + stem + ".svg"});
  }
  return out;
}

void write_latent_png(std::int64_t id, const FeatureStats& s, const fs::path& dir) {
  if (s.count == 0) return;
  HistogramPlot h;
  h.title = cat("Latent ", id, ": activations where it fires (", s.count, ")");
  h.x_label = "activation";
  h.y_label = "positions";
  const auto bins = static_cast<std::int64_t>(s.histogram.size());
  for (std::int64_t i = 0; i <= bins; ++i)
    h.edges.push_back(s.range * static_cast<double>(i) / static_cast<double>(bins));
  for (auto c : s.histogram) h.counts.push_back(static_cast<double>(c));
  fs::create_directories(dir / "figures");
  write_svg_as_png(histogram_svg(h), dir / "figures" / cat("latent-", id, ".png"));
}

}  // namespace saelab::report
