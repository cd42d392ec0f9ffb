#pragma once
// TransformerSource: the part of an ActivationSource that every decoder-only transformer shares.
// A model plugin implements forward() over a RunPlan (see hooks.hpp) and says what its shape and
// unembedding are; this class turns that into the ActivationSource calls (capture with early
// stop, run with one hook replaced, direct logit effects), validating tokens once, here.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/models/generate.hpp"
#include "saelab/models/hooks.hpp"

namespace saelab::models {

class SAELAB_API TransformerSource : public ActivationSource {
 public:
  std::map<std::string, torch::Tensor> run_with_hooks(const torch::Tensor& tokens,
                                                      const std::vector<std::string>& hooks) override;
  ModelOutput run_with_replacement(const torch::Tensor& tokens, const std::string& hook, const HookFn& fn,
                                   bool want_logits) override;
  torch::Tensor logit_effects(const torch::Tensor& directions, const std::string& hook) override;
  torch::Device device() const override { return device_; }
  // The decode loop of generate.hpp; with opts.use_cache and a model that has a cache, each step
  // runs only the new token.
  std::vector<std::int32_t> generate(const std::vector<std::int32_t>& prompt,
                                     const GenerateOptions& opts) override;

 protected:
  // `prefix` starts every error message ("gpt2", "llama"); `context_key` names where the context
  // length comes from ("n_positions", "llama.context_length").
  TransformerSource(std::string prefix, std::string context_key, torch::Device device)
      : prefix_(std::move(prefix)), context_key_(std::move(context_key)), device_(device) {}

  virtual HookShape hook_shape() const = 0;
  // tokens [batch, seq] int64 on device(), validated -> what the plan says: logits
  // [batch, seq, vocab] when plan.unembed, else the residual stream where it stopped.
  // Runs under InferenceMode.
  virtual torch::Tensor forward(const torch::Tensor& tokens, const RunPlan& plan) = 0;
  // The matrix that maps a residual-stream direction to its direct logit effect: [vocab, d_model].
  virtual torch::Tensor logit_unembedding() const = 0;
  // An empty key/value cache for one sequence, or null when the model has none (generation then
  // runs the whole sequence at every step).
  virtual std::unique_ptr<KvCache> new_cache() const { return nullptr; }
  // tokens [1, T] int64, validated, at positions cache.length .. cache.length + T - 1 -> logits
  // [1, T, vocab]; extends the cache by T. `plan` runs the whole model (its visitor sees these T
  // positions). Runs under InferenceMode.
  virtual torch::Tensor forward_cached(const torch::Tensor& tokens, KvCache& cache, const RunPlan& plan);

  // Checks shape, dtype, the context length (info().max_context) and the id range
  // (info().vocab_size); returns int64 on device().
  torch::Tensor prepare_tokens(const torch::Tensor& tokens) const;
  const std::string& prefix() const { return prefix_; }

 private:
  // The whole-model plan whose visitor applies `edits` at their hooks (checking each result's
  // shape), telling each where it is through `span` (which generate() updates before every step).
  // run_with_replacement uses it too, with one edit.
  RunPlan edit_plan(const std::vector<HookEdit>& edits, EditSpan& span) const;

  std::string prefix_;
  std::string context_key_;
  torch::Device device_;
};

// Next-token cross-entropy per position: logits [batch, seq, vocab], tokens [batch, seq]
// -> [batch, seq - 1], loss[b, t] = logsumexp(logits[b, t]) - logits[b, t, tokens[b, t + 1]].
SAELAB_API torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& tokens);

}  // namespace saelab::models
