#pragma once
// The gpt2 ActivationSource: a GPT-2 loaded from a model directory (pretrained, or random weights
// written by random_init), its BPE tokenizer, and hooked forward passes.
//
// Tokenizer files are looked for, in order: the `tokenizer` option's directory; the model
// directory (vocab.json + merges.txt, as the hub ships them); data/gpt2-tokenizer
// (encoder.json + vocab.bpe, placed by scripts/setup.sh) under the working directory and under
// the source tree. A model whose vocabulary is smaller than the tokenizer's (small random models)
// runs without one; tokenize() then says so.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "config.hpp"
#include "model.hpp"
#include "saelab/models/transformer_source.hpp"
#include "saelab/text/bpe_tokenizer.hpp"

namespace saelab::gpt2 {

struct SourceOptions {
  std::filesystem::path model_dir;      // a directory with config.json + model.safetensors
  std::string model_id;                 // what SourceInfo reports ("gpt2", a path, "random:<seed>")
  std::filesystem::path tokenizer_dir;  // "" = search as described above
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
};

class Gpt2Source final : public models::TransformerSource {
 public:
  explicit Gpt2Source(const SourceOptions& options);

  const SourceInfo& info() const override { return info_; }
  std::vector<std::int32_t> tokenize(std::string_view text) const override;
  std::string decode(const std::vector<std::int32_t>& tokens) const override;

  Gpt2Impl& model() { return *model_; }
  const Config& config() const { return model_->config(); }

 protected:
  models::HookShape hook_shape() const override;
  torch::Tensor forward(const torch::Tensor& tokens, const models::RunPlan& plan) override;
  // W_U as stored (wte, or lm_head when untied): [vocab, n_embd].
  torch::Tensor logit_unembedding() const override { return model_->unembedding(); }

 private:
  void find_tokenizer(const SourceOptions& options);

  Gpt2 model_{nullptr};
  torch::Dtype dtype_;
  std::optional<text::BpeTokenizer> tokenizer_;
  std::string no_tokenizer_reason_;
  SourceInfo info_;
};

using models::next_token_loss;

}  // namespace saelab::gpt2
