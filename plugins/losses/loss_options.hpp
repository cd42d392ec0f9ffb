#pragma once
// What the loss terms share: the coefficient option, its warm-up schedule and their checks.
#include <torch/types.h>

#include "saelab/core/options.hpp"
#include "saelab/interfaces/loss.hpp"

namespace saelab::losses {

// coefficient · min(1, progress / warmup_fraction); warmup_fraction 0 = no warm-up.
double scheduled(double coefficient, double warmup_fraction, const TrainProgress& p);

// "coefficient" (default `def`) and, with_warmup, "warmup_fraction" (default warmup_def).
OptionSchema coefficient_schema(double def, bool with_warmup, double warmup_def = 0.0);
// The options read back; errors name the option and its source line.
double checked_coefficient(const Options& o);
double checked_warmup(const Options& o);

}  // namespace saelab::losses
