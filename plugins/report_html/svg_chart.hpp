#pragma once
// Inline SVG histograms: no scripts, no external resources, a <title> tooltip on every bar.
#include <string>
#include <vector>

namespace saelab::report {

struct HistogramChart {
  std::vector<double> edges;         // [bins + 1], increasing
  std::vector<double> counts;        // [bins]
  std::vector<std::string> colours;  // one per bar, or one for all (CSS colours chosen by us)
  std::string x_label, y_label, aria_label;
  int width = 440, height = 160;
};

std::string svg_histogram(const HistogramChart& chart);

}  // namespace saelab::report
