#pragma once
// Loss: one term of the training objective. A YAML file composes several (mse + l1, mse + auxk...).
// Each term returns a scalar that is already multiplied by its own coefficient and schedule; the
// trainer sums the terms and logs each under its name.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

struct SAELAB_API TrainProgress {
  std::int64_t step = 0;
  std::int64_t total_steps = 1;
  double fraction() const { return total_steps > 0 ? double(step) / double(total_steps) : 1.0; }
};

struct SAELAB_API LossContext {
  const torch::Tensor& x;  // [batch, d_in] input (after input scaling)
  const SaeOutput& out;    // forward of `sae` on x
  SaeArchitecture& sae;
  const torch::Tensor& dead_mask;  // [d_sae] bool: latents dead over the tracking window
  TrainProgress progress;
  // [batch, d_out] what the reconstruction should match when that is not x: a transcoder's output
  // hook (after the same scaling). Null for an SAE; use target().
  const torch::Tensor* target_tensor = nullptr;
  const torch::Tensor& target() const { return target_tensor ? *target_tensor : x; }
};

class SAELAB_API Loss {
 public:
  static constexpr const char* kKind = "loss";
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  virtual torch::Tensor compute(const LossContext& ctx) = 0;  // scalar, ≥ 0

  // Terms that adapt while training (p-annealing's exponent and coefficient) keep that state here,
  // so that a resumed run continues bit for bit: state() goes into the checkpoint's trainer.json
  // under "losses"/<name>, load_state() gets it back (untrusted: `where` names the file for errors).
  virtual nlohmann::json state() const { return nullptr; }
  virtual void load_state(const nlohmann::json& state, const std::string& where) {}
  // Numbers worth logging besides the term's value (metrics.jsonl "loss.<name>.<key>").
  virtual std::map<std::string, double> metrics() const { return {}; }

  // Adaptive terms must adapt to the step's whole batch, not to the micro-batch or the rank's slice
  // one compute() call sees: otherwise train.micro_batches would change the run, and the ranks of a
  // data-parallel run would drift apart. So compute() only adds what it saw to step_sums() (for
  // example a batch mean), and the state moves on in end_step(), once per optimizer step, after
  // the update: `sums` is step_sums() added over the step's `parts` compute() calls (micro-batches
  // × ranks, each on an equal share of the batch), the same on every rank. step_sums() must have
  // the same length on every rank (it may depend on the state, which every rank shares).
  virtual std::vector<double> step_sums() const { return {}; }
  virtual void end_step(const std::vector<double>& sums, std::int64_t parts, const TrainProgress& progress) {}
};

}  // namespace saelab
