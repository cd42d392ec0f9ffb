// Example plugin: `early_stop`, a TrainerCallback that ends training once a logged metric crosses
// a threshold (e.g. stop when mse < 0.05). Everything a plugin needs is here:
//   1. a class implementing one framework interface (saelab/interfaces/callback.hpp),
//   2. an OptionSchema: every option with type, default, bounds and a one-line description,
//   3. a factory that reads validated Options into plain members,
//   4. SAELAB_PLUGIN(...) exporting the manifest and the registration entry point.
#include <cmath>
#include <limits>

#include "saelab/interfaces/callback.hpp"
#include "saelab/core/plugin_api.hpp"

namespace {

class EarlyStop final : public saelab::TrainerCallback {
 public:
  EarlyStop(std::string metric, double below, double above, std::int64_t patience)
      : metric_(std::move(metric)), below_(below), above_(above), patience_(patience) {}

  bool should_stop(const saelab::StepMetrics& m) override {
    auto it = m.values.find(metric_);
    if (it == m.values.end()) return false;
    const double v = it->second;
    const bool crossed = (std::isfinite(below_) && v < below_) || (std::isfinite(above_) && v > above_);
    hits_ = crossed ? hits_ + 1 : 0;  // consecutive reports, so one noisy batch does not stop a run
    return hits_ >= patience_;
  }

 private:
  std::string metric_;
  double below_, above_;
  std::int64_t patience_;
  std::int64_t hits_ = 0;
};

saelab::OptionSchema schema() {
  saelab::OptionSchema s;
  const double inf = std::numeric_limits<double>::infinity();
  s.string("metric", "mse", "Metric name as written to metrics.jsonl (loss, mse, l0, dead_fraction, ...)");
  s.real("below", -inf, "Stop once the metric is below this value");
  s.real("above", inf, "Stop once the metric is above this value");
  s.integer("patience", 1, "Consecutive metric reports that must cross the threshold").at_least(1);
  return s;
}

void register_plugin(saelab::Registrar& r) {
  r.add<saelab::TrainerCallback>("early_stop", "Stops training when a metric crosses a threshold", schema(),
                                 [](const saelab::Options& o, const saelab::PluginContext&) {
                                   if (!o.is_set("below") && !o.is_set("above"))
                                     o.fail("below",
                                            "set `below` or `above` (otherwise early_stop would never stop)");
                                   return std::make_unique<EarlyStop>(o.string("metric"), o.real("below"),
                                                                      o.real("above"), o.integer("patience"));
                                 });
}

}  // namespace

SAELAB_PLUGIN("example", "1.0.0", "Worked example: early stopping callback", register_plugin)
