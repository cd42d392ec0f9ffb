// The `synthetic` activation source: a "model" whose activations are a planted sparse dictionary.
//
// It exists so that SAE training can be tested against a known answer (did the SAE find the true
// features?) and, being small, it is also the worked example of a plugin in docs/architecture.md:
// one class implementing an interface, an option schema, and a registration function.
//
// The model:
//   tokens        bytes (vocabulary 256); BOS and EOS are byte 0
//   one hook      "synthetic.hook", width d_in: row (b, s) = Dictionary::rows(key(b, s)), where the
//                 key hashes the seed and tokens[b, 0..s] (so activations depend on the context)
//   readout       logits = h · U, U [d_in, 256] fixed Gaussian (entries N(0, readout_scale²))
//   "next token"  the target at position s is argmax of the clean logits at s; ModelOutput::loss
//                 [batch, seq − 1] is the cross-entropy of the (possibly replaced) logits against
//                 it at positions 0 .. seq − 2. Zero-ablating the hook gives ln 256 per position,
//                 the clean model its own (low) CE, and a spliced SAE something in between that
//                 measures how much of the readout its reconstruction preserves.
//   logit_effects directions · U.
// When created inside a run (PluginContext::run_dir set) it writes the true dictionary to
// <run_dir>/true_features.safetensors ("features" [n_features, d_in] float32).
#include <memory>
#include <string>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/ground_truth.hpp"
#include "saelab/core/plugin_api.hpp"
#include "saelab/formats/safetensors.hpp"
#include "saelab/core/sha256.hpp"
#include "synthetic_dictionary.hpp"

namespace saelab::synthetic {
namespace {

constexpr const char* kHook = "synthetic.hook";
constexpr std::int64_t kVocab = 256;

OptionSchema source_schema() {
  OptionSchema s;
  s.integer("d_in", 256, "Width of the hook (dimension of the true features)").at_least(1);
  s.integer("n_features", 1024, "Number of planted unit-norm features").at_least(1);
  s.real("p_active", 0.004, "Probability that a feature is active in a row").above(0).at_most(0.5);
  s.choice("magnitude", "uniform", {"uniform", "exponential"},
           "Distribution of active coefficients: uniform on (0, 2·mean) or exponential");
  s.real("magnitude_mean", 1.0, "Mean of an active coefficient").above(0);
  s.integer("seed", 0, "Seed of the dictionary and the rows (independent of the run's seed)").at_least(0);
  s.integer("max_context", 1024, "Longest token sequence accepted").at_least(2);
  s.real("readout_scale", 2.0, "Standard deviation of the fixed unembedding's entries").above(0);
  return s;
}

class SyntheticSource final : public ActivationSource, public GroundTruth {
 public:
  SyntheticSource(const Options& o, const PluginContext& ctx)
      : dict_(DictionaryConfig{o.integer("d_in"), o.integer("n_features"), o.real("p_active"),
                               o.string("magnitude"), o.real("magnitude_mean"),
                               std::uint64_t(o.integer("seed"))}) {
    const std::uint64_t seed = dict_.config().seed;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(mix64(seed + 2));
    unembed_ =
        at::normal(0.0, o.real("readout_scale"), {dict_.config().d_in, kVocab}, gen).to(torch::kFloat32);
    const nlohmann::json identity = {{"d_in", dict_.config().d_in},
                                     {"n_features", dict_.config().n_features},
                                     {"p_active", dict_.config().p_active},
                                     {"magnitude", dict_.config().magnitude},
                                     {"magnitude_mean", dict_.config().magnitude_mean},
                                     {"seed", seed},
                                     {"readout_scale", o.real("readout_scale")}};
    info_.model_id = cat("synthetic:", seed);
    info_.config_hash = sha256_hex(identity.dump());
    info_.tokenizer_sha256 = sha256_hex("bytes");
    info_.vocab_size = kVocab;
    info_.max_context = o.integer("max_context");
    info_.bos_token = 0;
    info_.eos_token = 0;
    info_.hooks = {{kHook, dict_.config().d_in}};
    info_.hook_layers = {{kHook, 0}};
    if (!ctx.run_dir.empty()) {
      std::filesystem::create_directories(ctx.run_dir);
      safetensors::save(ctx.run_dir / "true_features.safetensors", {{"features", dict_.features()}},
                        {{"source", "synthetic"}, {"config", identity.dump()}});
    }
  }

  const SourceInfo& info() const override { return info_; }

  std::vector<std::int32_t> tokenize(std::string_view text) const override {
    std::vector<std::int32_t> out;
    out.reserve(text.size());
    for (unsigned char c : text) out.push_back(c);
    return out;
  }

  std::string decode(const std::vector<std::int32_t>& tokens) const override {
    std::string out;
    for (std::int32_t t : tokens) {
      SAELAB_CHECK(t >= 0 && t < kVocab, Error, "synthetic: token ", t, " is not a byte (allowed: 0..255)");
      out += char(t);
    }
    return out;
  }

  std::map<std::string, torch::Tensor> run_with_hooks(const torch::Tensor& tokens,
                                                      const std::vector<std::string>& hooks) override {
    for (const auto& h : hooks) check_hook(h);
    std::map<std::string, torch::Tensor> out;
    if (!hooks.empty()) out[kHook] = activations(tokens);
    return out;
  }

  ModelOutput run_with_replacement(const torch::Tensor& tokens, const std::string& hook, const HookFn& fn,
                                   bool want_logits) override {
    check_hook(hook);
    const torch::Tensor h = activations(tokens);  // [batch, seq, d_in]
    torch::Tensor replaced = fn ? fn(h) : h;
    SAELAB_CHECK(replaced.sizes() == h.sizes(), Error, "synthetic: the replacement for ", kHook,
                 " returned shape ", replaced.sizes(), ", expected ", h.sizes());
    const std::int64_t seq = h.size(1);
    SAELAB_CHECK(seq >= 2, Error, "synthetic: sequences need ≥ 2 tokens for a loss, got ", seq);
    const torch::Tensor target = torch::matmul(h, unembed_).argmax(-1);  // [batch, seq]
    const torch::Tensor logits = torch::matmul(replaced.to(torch::kFloat32), unembed_);
    const torch::Tensor logp = logits.narrow(1, 0, seq - 1).log_softmax(-1);  // [b, seq-1, V]
    ModelOutput out;
    out.loss = -logp.gather(-1, target.narrow(1, 0, seq - 1).unsqueeze(-1)).squeeze(-1);
    if (want_logits) out.logits = logits;
    return out;
  }

  torch::Tensor logit_effects(const torch::Tensor& directions, const std::string& hook) override {
    check_hook(hook);
    return torch::matmul(directions.to(torch::kFloat32), unembed_);
  }

  torch::Device device() const override { return torch::kCPU; }

  torch::Tensor true_features() const override { return dict_.features(); }

  torch::Tensor true_coefficients(const torch::Tensor& tokens) const override {
    SAELAB_CHECK(tokens.dim() == 2, Error, "synthetic: tokens must be [batch, seq], got ", tokens.sizes());
    const auto keys = prefix_keys(tokens, dict_.config().seed);
    auto out = torch::zeros({std::int64_t(keys.size()), dict_.config().n_features}, torch::kFloat32);
    auto acc = out.accessor<float, 2>();
    for (std::size_t r = 0; r < keys.size(); ++r) {
      const Dictionary::Code code = dict_.code(keys[r]);
      for (std::size_t k = 0; k < code.feature.size(); ++k)
        acc[std::int64_t(r)][code.feature[k]] = code.coefficient[k];
    }
    return out;
  }

 private:
  void check_hook(const std::string& hook) const {
    SAELAB_CHECK(hook == kHook, ConfigError, "synthetic: no hook named '", hook,
                 "'; this source has one hook: ", kHook);
  }

  torch::Tensor activations(const torch::Tensor& tokens) const {
    SAELAB_CHECK(tokens.dim() == 2 && tokens.size(1) <= info_.max_context, Error,
                 "synthetic: tokens must be [batch, seq] with seq ≤ ", info_.max_context, ", got ",
                 tokens.sizes());
    const torch::Tensor rows = dict_.rows(prefix_keys(tokens, dict_.config().seed));
    return rows.view({tokens.size(0), tokens.size(1), dict_.config().d_in});
  }

  Dictionary dict_;
  SourceInfo info_;
  torch::Tensor unembed_;  // [d_in, 256]
};

void register_plugin(Registrar& r) {
  r.add<ActivationSource>(
      "synthetic", "Planted sparse dictionary with a known answer (for testing SAE training)",
      source_schema(),
      [](const Options& o, const PluginContext& c) { return std::make_unique<SyntheticSource>(o, c); });
}

}  // namespace
}  // namespace saelab::synthetic

SAELAB_PLUGIN("synthetic", "1.0.0", "Synthetic activation source with a planted dictionary",
              saelab::synthetic::register_plugin)
