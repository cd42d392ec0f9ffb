#pragma once
// Learning-rate schedule: linear warm-up, constant, then linear decay to a floor over the last
// fraction of training. A pure function of the step, so a resumed run needs only the step.
#include <cstdint>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API LrSchedule {
  double lr = 3e-4;
  std::int64_t warmup_steps = 0;  // steps 0 .. warmup-1 use lr * (step + 1) / warmup
  double decay_fraction = 0.0;    // the last round(decay_fraction * total) steps decay linearly
  double floor = 0.0;             // ... from lr at the first decay step towards lr * floor,
                                  // reached at step == total_steps (one past the last step)
  std::int64_t total_steps = 1;

  std::int64_t decay_steps() const;
  // Learning rate used by the optimizer step with 0-based index `step`. Where warm-up and decay
  // overlap (very short runs), the smaller factor wins.
  double at(std::int64_t step) const;
};

}  // namespace saelab
