// Loss-term options (loss_options.hpp).
#include "loss_options.hpp"

#include <algorithm>
#include <cmath>

#include "saelab/core/error.hpp"

namespace saelab::losses {

double scheduled(double coefficient, double warmup_fraction, const TrainProgress& p) {
  if (warmup_fraction <= 0) return coefficient;
  return coefficient * std::min(1.0, p.fraction() / warmup_fraction);
}

OptionSchema coefficient_schema(double def, bool with_warmup, double warmup_def) {
  OptionSchema s;
  s.real("coefficient", def, "weight of this term in the training loss").at_least(0);
  if (with_warmup) {
    s.real("warmup_fraction", warmup_def,
           "the coefficient rises linearly from 0 over this fraction of the training steps "
           "(0 = constant)")
        .at_least(0)
        .at_most(1);
  }
  return s;
}

double checked_coefficient(const Options& o) {
  const double c = o.real("coefficient");
  if (!(c >= 0) || !std::isfinite(c))
    o.fail("coefficient", cat("coefficient = ", c, " must be finite and ≥ 0"));
  return c;
}

double checked_warmup(const Options& o) {
  const double w = o.real("warmup_fraction");
  if (!(w >= 0 && w <= 1)) o.fail("warmup_fraction", cat("warmup_fraction = ", w, " must be in [0, 1]"));
  return w;
}

}  // namespace saelab::losses
