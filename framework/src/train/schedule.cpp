#include <algorithm>
#include <cmath>

#include "saelab/train/schedule.hpp"

namespace saelab {

std::int64_t LrSchedule::decay_steps() const {
  auto n = static_cast<std::int64_t>(std::llround(decay_fraction * double(total_steps)));
  return std::clamp<std::int64_t>(n, 0, total_steps);
}

double LrSchedule::at(std::int64_t step) const {
  double factor = 1.0;
  if (warmup_steps > 0 && step < warmup_steps) factor = double(step + 1) / double(warmup_steps);
  const std::int64_t n = decay_steps();
  const std::int64_t start = total_steps - n;
  if (n > 0 && step >= start) {
    // 1 at the first decay step, `floor` one step past the end.
    const double remaining = double(total_steps - step) / double(n);
    factor = std::min(factor, floor + (1.0 - floor) * remaining);
  }
  return lr * factor;
}

}  // namespace saelab
