#pragma once
#include "saelab/core/error.hpp"
// Test doubles for the evaluate and report stages: a tiny deterministic "model" with a linear
// readout, an SAE with explicit weights, and an in-memory activation reader.
//
// FakeSource: token t at position p has activation h = E[t] + P[p] at its residual hook; the logits
// are h·U + c. Token ids come from bytes (id = byte % 11 + 1), id 0 is BOS/EOS, and decode maps ids
// to a table of strings that includes markup and invalid UTF-8, to exercise escaping.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab::test {

inline constexpr const char* kResidHook = "blocks.0.hook_resid_pre";
inline constexpr const char* kAttnHook = "blocks.0.hook_attn_out";

class FakeSource : public ActivationSource {
 public:
  explicit FakeSource(std::int64_t d = 6, std::uint64_t seed = 1);
  const SourceInfo& info() const override { return info_; }
  std::vector<std::int32_t> tokenize(std::string_view text) const override;
  std::string decode(const std::vector<std::int32_t>& tokens) const override;
  std::map<std::string, torch::Tensor> run_with_hooks(const torch::Tensor& tokens,
                                                      const std::vector<std::string>& hooks) override;
  ModelOutput run_with_replacement(const torch::Tensor& tokens, const std::string& hook, const HookFn& fn,
                                   bool want_logits) override;
  torch::Tensor logit_effects(const torch::Tensor& directions, const std::string& hook) override;
  torch::Device device() const override { return torch::kCPU; }

  torch::Tensor activations(const torch::Tensor& tokens) const;  // [b, s] -> [b, s, d]
  ModelOutput readout(const torch::Tensor& tokens, const torch::Tensor& h) const;
  static const std::vector<std::string>& vocab();
  // The model's tensors E [vocab, d], P [max_context, d], U [d, vocab], c [vocab], for oracles.
  std::map<std::string, torch::Tensor> weights() const {
    return {{"E", E_}, {"P", P_}, {"U", U_}, {"c", c_}};
  }

 private:
  SourceInfo info_;
  torch::Tensor E_, P_, U_, c_;
};

// relu((x − b_dec)·W_enc + b_enc)·W_dec + b_dec with explicit weights.
class TestSae : public SaeArchitecture {
 public:
  TestSae(torch::Tensor W_enc, torch::Tensor b_enc, torch::Tensor W_dec, torch::Tensor b_dec);
  std::string architecture() const override { return "standard"; }
  SaeShape shape() const override { return {W_enc.size(0), W_enc.size(1)}; }
  SaeOutput forward(const torch::Tensor& x) override;
  torch::Tensor encode(const torch::Tensor& x) override;
  torch::Tensor decode(const torch::Tensor& latents) override;
  TensorMap state() const override;
  void load_state(const TensorMap&) override {}
  void fold_input_scale(double) override {}
  torch::Tensor decoder_weight() const override { return W_dec; }
  void reinitialize_latents(const torch::Tensor&, const torch::Tensor&, double) override {
    throw Error("TestSae does not resample latents");
  }

  torch::Tensor W_enc, b_enc, W_dec, b_dec;
};

// d_sae = 2·d: latents relu(x), relu(−x); reconstructs x exactly.
std::shared_ptr<TestSae> identity_sae(std::int64_t d);
// Everything zero: reconstructs 0.
std::shared_ptr<TestSae> zero_sae(std::int64_t d, std::int64_t d_sae);
// Random weights with a negative encoder bias, so latents are sparse.
std::shared_ptr<TestSae> random_sae(std::int64_t d, std::int64_t d_sae, std::uint64_t seed);

// Rows with provenance, served in order in batches of `batch_rows`, wrapping at the end.
class FakeReader : public ActivationReader {
 public:
  FakeReader(ActivationRows rows, std::int64_t batch_rows) : rows_(std::move(rows)), batch_(batch_rows) {}
  torch::Tensor next_batch() override { return next_rows().activations; }
  ActivationRows next_rows() override;
  std::int64_t rows_per_epoch() const override { return rows_.activations.size(0); }
  std::int64_t d() const override { return rows_.activations.size(1); }
  nlohmann::json cursor() const override { return {{"pos", pos_}}; }
  void restore(const nlohmann::json& c) override { pos_ = c.at("pos").get<std::int64_t>(); }

 private:
  ActivationRows rows_;
  std::int64_t batch_, pos_ = 0;
};

// Writes `text` to a fresh file under the test's temporary directory and returns its path.
std::string write_corpus(const std::string& name, const std::string& text);
// A deterministic pseudo-text of `n` bytes.
std::string corpus_text(std::size_t n);

}  // namespace saelab::test
