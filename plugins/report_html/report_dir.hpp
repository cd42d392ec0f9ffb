#pragma once
// Writing the report directory (docs/report-format.md): the embedded pages, scripts and
// stylesheet, the data scripts and the figures, into `<out>.partial`, renamed to `<out>` only once
// everything is written. An existing report stays in place until then.
#include <string>
#include <vector>

#include "html_reporter.hpp"
#include "saelab/features/collector.hpp"
#include "saelab/features/directions.hpp"
#include "saelab/interfaces/reporter.hpp"

namespace saelab::report {

struct ScanTiming {      // seconds
  double forward_s = 0;  // in the model (0 when reading a store)
  double encode_s = 0;   // the SAE's encoder
  double collect_s = 0;  // the per-latent statistics
  double scan_s = 0;     // the whole scan, reading and generating rows included
  double neighbours_s = 0, logits_s = 0;
};

struct ReportInputs {
  ReportContext& ctx;
  const HtmlReportOptions& opts;
  const FeatureCollector& features;
  ScanTiming timing;
  std::string scan_description;
  std::vector<std::vector<Neighbour>> neighbours;  // [d_sae]
  LogitTables logits;
};

void write_report_dir(const ReportInputs& in);

// The page shells, scripts and stylesheet compiled into the plugin.
void write_assets(const std::filesystem::path& dir);

}  // namespace saelab::report
