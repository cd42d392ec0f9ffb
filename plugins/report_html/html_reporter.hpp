#pragma once
// Reporter "html": a static report directory (docs/report-format.md) with a page for every latent.
//
// One streaming pass (features/collector.hpp) over up to `tokens` evaluated positions gathers every
// latent's statistics and examples; the decoder's neighbours and logit effects come from the
// weights. The directory is written under a temporary name and renamed into place only when
// complete, so an interrupted run never leaves a half-written report over a finished one.
#include <cstdint>
#include <string>

#include "saelab/core/options.hpp"
#include "saelab/features/collector.hpp"
#include "saelab/interfaces/reporter.hpp"

namespace saelab::report {

enum class ScanInput { Auto, Tokens, Store };

struct HtmlReportOptions {
  ScanInput input = ScanInput::Auto;
  std::int64_t tokens = 1000000;
  std::int64_t batch_size = 8;
  bool exclude_bos = true;
  FeatureOptions features;
  std::int64_t neighbours = 5;
  std::int64_t logit_tokens = 10;
  std::int64_t chunk_size = 64;
  bool png = false;
  std::int64_t png_latents = 24;
};

OptionSchema html_report_schema();
HtmlReportOptions html_report_options(const Options& o, std::uint64_t seed);

class HtmlReporter : public Reporter {
 public:
  explicit HtmlReporter(HtmlReportOptions opts) : opts_(std::move(opts)) {}
  void write(ReportContext& ctx) override;

 private:
  HtmlReportOptions opts_;
};

}  // namespace saelab::report
