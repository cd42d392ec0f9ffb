// Registers Reporter "html".
#include <memory>

#include "html_reporter.hpp"
#include "saelab/core/plugin_api.hpp"

namespace {

void register_plugin(saelab::Registrar& r) {
  r.add<saelab::Reporter>(
      "html",
      "Self-contained HTML page: evaluation summary, feature density, and per latent top "
      "contexts with heatmaps, activation histogram, interval samples and logit effects",
      saelab::report::html_report_schema(), [](const saelab::Options& o, const saelab::PluginContext& c) {
        return std::make_unique<saelab::report::HtmlReporter>(saelab::report::html_report_options(o, c.seed));
      });
}

}  // namespace

SAELAB_PLUGIN("report_html", "1.0.0", "Offline HTML report of an SAE's latents", register_plugin)
