#pragma once
// TrainerCallback: observes training (metrics sinks, custom logging, early stopping).
#include <cstdint>
#include <map>
#include <string>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

struct SAELAB_API StepMetrics {
  std::int64_t step = 0;
  std::int64_t tokens = 0;
  std::map<std::string, double> values;  // loss, mse, l1, l0, dead_fraction, lr, tokens_per_s...
};

class SAELAB_API TrainerCallback {
 public:
  static constexpr const char* kKind = "callback";
  virtual ~TrainerCallback() = default;
  virtual void on_metrics(const StepMetrics& m, SaeArchitecture& sae) {}
  // Return true to stop training early (a checkpoint is written first).
  virtual bool should_stop(const StepMetrics& m) { return false; }
};

}  // namespace saelab
