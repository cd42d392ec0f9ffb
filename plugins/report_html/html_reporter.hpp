#pragma once
// Reporter "html": one self-contained page, <out_dir>/index.html, plus <out_dir>/latents.json.
//
// It scans token sequences through the model (or stored activations) twice with bounded memory:
// pass 1 counts every latent's firing (feature density histogram, dead latents, which latents to
// show, each latent's max); pass 2 gathers, for the chosen latents only, top-k contexts, a histogram
// of non-zero activations and random examples from activation intervals. Logit effects come from
// the source's unembedding of W_dec rows.
#include <cstdint>
#include <string>
#include <vector>

#include "latent_collect.hpp"
#include "saelab/interfaces/reporter.hpp"
#include "saelab/core/options.hpp"

namespace saelab::report {

struct HtmlReportOptions {
  std::int64_t latents = 24;
  Selection selection = Selection::MostActive;
  std::string selection_name = "most_active";
  std::vector<std::int64_t> latent_ids;
  std::string latent_ids_where;  // "file:line:col: report.latent_ids" for range errors
  CollectOptions collect;
  std::int64_t logit_tokens = 10;
  std::int64_t batches = 16, batch_size = 8;
  bool exclude_bos = true;
  std::int64_t cache_bytes = std::int64_t(1024) << 20;
};

OptionSchema html_report_schema();
// Validates what the schema cannot (latent_ids parse, list selection needs ids).
HtmlReportOptions html_report_options(const Options& o, std::uint64_t seed);

class HtmlReporter : public Reporter {
 public:
  explicit HtmlReporter(HtmlReportOptions opts) : opts_(std::move(opts)) {}
  void write(ReportContext& ctx) override;

 private:
  HtmlReportOptions opts_;
};

}  // namespace saelab::report
