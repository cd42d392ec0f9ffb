#include "source.hpp"

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/formats/hub.hpp"

namespace saelab::llama {

LlamaSource::LlamaSource(const SourceOptions& options)
    : TransformerSource("llama", "llama.context_length", options.device) {
  SAELAB_CHECK(options.dtype == torch::kFloat32 || options.dtype == torch::kBFloat16, ConfigError,
               "llama: compute dtype must be float32 or bfloat16");
  const gguf::File file(options.file);
  const Config cfg = read_config(file);
  tokenizer_ = text::load_gguf_tokenizer(file);
  SAELAB_CHECK(tokenizer_->tokenizer.vocab_size() <= cfg.vocab_size, FormatError, "llama: '",
               options.file.string(), "': the tokenizer has ", tokenizer_->tokenizer.vocab_size(),
               " tokens but token_embd.weight only ", cfg.vocab_size, " rows");
  model_ = std::make_unique<Model>(file, cfg, options.dtype, options.device);
  info_.model_id = options.model_id.empty() ? options.file.filename().string() : options.model_id;
  info_.config_hash = sha256_hex(cat("llama-gguf\n", hub::file_sha256_cached(options.file), "\n"));
  info_.tokenizer_sha256 = tokenizer_->tokenizer.sha256();
  info_.vocab_size = cfg.vocab_size;
  info_.max_context = cfg.context_length;
  info_.bos_token = tokenizer_->bos;
  info_.eos_token = tokenizer_->eos;
  info_.special_tokens = tokenizer_->tokenizer.special_ids();
  info_.hooks = models::all_hooks(hook_shape());
  info_.hook_layers = models::all_hook_layers(hook_shape());
}

std::vector<std::int32_t> LlamaSource::tokenize(std::string_view text) const {
  return tokenizer_->tokenizer.encode(text, /*allow_special=*/true);
}

std::string LlamaSource::decode(const std::vector<std::int32_t>& tokens) const {
  return tokenizer_->tokenizer.decode(tokens);
}

models::HookShape LlamaSource::hook_shape() const {
  const Config& c = config();
  return {"Llama", c.n_layer, c.d_model, c.d_mlp};
}

torch::Tensor LlamaSource::forward(const torch::Tensor& tokens, const models::RunPlan& plan) {
  return model_->run(tokens, plan);
}

torch::Tensor LlamaSource::forward_cached(const torch::Tensor& tokens, models::KvCache& cache,
                                          const models::RunPlan& plan) {
  auto* c = dynamic_cast<KvCache*>(&cache);
  SAELAB_CHECK(c, Error, "llama: forward_cached was given another model's cache");
  return model_->run_cached(tokens, *c, plan);
}

torch::Tensor LlamaSource::logit_unembedding() const {
  return model_->head() * model_->final_norm();  // [vocab, d] * [d]
}

}  // namespace saelab::llama
