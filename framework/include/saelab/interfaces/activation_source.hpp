#pragma once
// ActivationSource: a model that turns token ids into activations at named hook points.
//
// Hook names follow TransformerLens ("blocks.8.hook_resid_pre"). A source tokenizes text itself
// (tokenizers belong to models), runs the model capturing any number of hooks in one pass, and can
// run it again with one hook's activation replaced, which is how evaluation splices an SAE in.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API SourceInfo {
  std::string model_id;          // "gpt2", a path, or "random:<seed>"
  std::string config_hash;       // SHA-256 of the model's config and weights identity
  std::string tokenizer_sha256;  // identity of the tokenizer files
  std::int64_t vocab_size = 0;
  std::int64_t max_context = 0;               // longest sequence the model accepts
  std::int32_t bos_token = -1;                // token prepended to every sequence (GPT-2: <|endoftext|>)
  std::int32_t eos_token = -1;                // token placed between documents
  std::vector<std::int32_t> special_tokens;   // control tokens (GPT-2: <|endoftext|>), sorted
  std::map<std::string, std::int64_t> hooks;  // every hook point -> its width d
  // Every hook point -> the layer it belongs to, written to a saved SAE's cfg.json as hook_layer.
  // A source whose hooks are not TransformerLens-shaped ("synthetic.hook") says it here.
  std::map<std::string, std::int64_t> hook_layers;
};

// Output of a run with a hook replaced: what CE-loss evaluation and steering need.
struct SAELAB_API ModelOutput {
  torch::Tensor logits;  // [batch, seq, vocab]  (may be undefined if not requested)
  torch::Tensor loss;    // [batch, seq - 1] next-token cross-entropy per position
};

// Where a hook edit is during generation: its activation [1, T, d] holds positions
// first .. first + T - 1 of a sequence whose first prompt_length tokens are the prompt (with a
// key/value cache, the prompt comes at once and then one position per step).
struct SAELAB_API EditSpan {
  std::int64_t first = 0;
  std::int64_t prompt_length = 0;
};

// Edits a hook's activation: [1, T, d] float32 -> the same shape.
using HookEditFn = std::function<torch::Tensor(const torch::Tensor& act, const EditSpan& span)>;

// One intervention at a hook. Edits at the same hook apply in the order given.
struct SAELAB_API HookEdit {
  std::string hook;
  HookEditFn fn;
};

// How text is generated: greedy when temperature is 0, else sampling from softmax(logits / T)
// restricted to the smallest set of tokens whose probability reaches top_p (nucleus sampling),
// from a generator seeded by `seed` (the same seed gives the same text on any machine).
struct SAELAB_API GenerateOptions {
  std::int64_t max_new_tokens = 32;
  double temperature = 0.0;
  double top_p = 1.0;
  std::uint64_t seed = 0;
  std::int32_t stop_token = -1;  // generation ends after this token (-1: none)
  bool use_cache = true;         // keys and values of earlier positions are kept (false: recompute)
  std::vector<HookEdit> edits;   // interventions applied at every forward step (steering)
};

// Replaces a hook's activation: receives [batch, seq, d], returns the same shape.
using HookFn = std::function<torch::Tensor(const torch::Tensor&)>;

class SAELAB_API ActivationSource {
 public:
  static constexpr const char* kKind = "source";
  virtual ~ActivationSource() = default;

  virtual const SourceInfo& info() const = 0;

  virtual std::vector<std::int32_t> tokenize(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<std::int32_t>& tokens) const = 0;

  // tokens [batch, seq] int64 -> hook name -> [batch, seq, d] float32 on the source's device.
  // Stops the forward pass after the last block a requested hook needs.
  virtual std::map<std::string, torch::Tensor> run_with_hooks(const torch::Tensor& tokens,
                                                              const std::vector<std::string>& hooks) = 0;

  // Runs the whole model with `hook`'s activation replaced by fn(activation).
  virtual ModelOutput run_with_replacement(const torch::Tensor& tokens, const std::string& hook,
                                           const HookFn& fn, bool want_logits) = 0;

  // Direct logit effect of directions written at `hook`: directions [n, d] -> [n, vocab].
  // Undefined tensor when the hook is not in the residual stream.
  virtual torch::Tensor logit_effects(const torch::Tensor& directions, const std::string& hook) = 0;

  virtual torch::Device device() const = 0;

  // Continues `prompt` by up to max_new_tokens tokens; returns only the new ones. Sources that
  // cannot generate throw Error saying so.
  virtual std::vector<std::int32_t> generate(const std::vector<std::int32_t>& prompt,
                                             const GenerateOptions& opts);
};

}  // namespace saelab
