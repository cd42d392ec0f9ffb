#pragma once
// The llama ActivationSource: a Llama-architecture GGUF file (SmolLM2, Llama 2, TinyLlama, ...),
// its byte-level BPE tokenizer from the same file, and hooked forward passes.
//
// Tokenization: the file's vocabulary and merges with its pre-tokenizer (tokenizer.ggml.pre);
// control tokens (token_type 3, e.g. <|im_start|>) written literally in text are matched as those
// tokens before BPE, as transformers and llama.cpp do. No BOS is added by tokenize(): corpus
// packing prepends SourceInfo::bos_token when the experiment asks for it.
// Direct logit effects fold the final RMSNorm's weight into the unembedding,
// W_U_eff[v] = W_U[v] * final_norm (as TransformerLens's fold_ln does); the per-token 1/rms factor
// is a positive scale of all logits at a position and is left out.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "config.hpp"
#include "model.hpp"
#include "saelab/models/transformer_source.hpp"
#include "saelab/text/gguf_tokenizer.hpp"

namespace saelab::llama {

struct SourceOptions {
  std::filesystem::path file;  // the .gguf file
  std::string model_id;        // what SourceInfo reports ("" = the file name)
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
};

class LlamaSource final : public models::TransformerSource {
 public:
  explicit LlamaSource(const SourceOptions& options);

  const SourceInfo& info() const override { return info_; }
  std::vector<std::int32_t> tokenize(std::string_view text) const override;
  std::string decode(const std::vector<std::int32_t>& tokens) const override;

  const Config& config() const { return model_->config(); }
  const Model& model() const { return *model_; }

 protected:
  models::HookShape hook_shape() const override;
  torch::Tensor forward(const torch::Tensor& tokens, const models::RunPlan& plan) override;
  torch::Tensor logit_unembedding() const override;
  std::unique_ptr<models::KvCache> new_cache() const override { return std::make_unique<KvCache>(); }
  torch::Tensor forward_cached(const torch::Tensor& tokens, models::KvCache& cache,
                               const models::RunPlan& plan) override;

 private:
  std::unique_ptr<Model> model_;
  std::optional<text::GgufTokenizer> tokenizer_;  // set in the constructor (no default tokenizer)
  SourceInfo info_;
};

}  // namespace saelab::llama
