#pragma once
// GPT-2 hyper-parameters, read from a Hugging Face `config.json`.
//
// config.json (a JSON object; keys as transformers' GPT2Config writes them):
//   n_layer, n_head, n_embd, vocab_size        required positive integers, n_embd % n_head == 0
//   n_positions (or the older n_ctx)           required positive integer: the longest context
//   n_inner                                    MLP width; null or absent -> 4 * n_embd
//   layer_norm_epsilon                         default 1e-5
//   activation_function                        gelu_new (default) | gelu_pytorch_tanh | gelu | relu
//   scale_attn_weights                         default true: scores / sqrt(d_head)
//   scale_attn_by_inverse_layer_idx            default false: scores additionally / (layer + 1)
//   tie_word_embeddings                        default true
//   bos_token_id, eos_token_id                 default vocab_size - 1 (GPT-2: 50256)
//   model_type                                 "gpt2" when present
// Anything else (dropout rates, task heads, architectures ...) does not change inference and is
// ignored. The file is untrusted: a wrong type or value is a FormatError naming the file and key.
#include <cstdint>
#include <filesystem>
#include <string>

namespace saelab::gpt2 {

enum class Activation { GeluTanh, GeluErf, Relu };

struct Config {
  std::int64_t n_layer = 12;
  std::int64_t n_head = 12;
  std::int64_t n_embd = 768;
  std::int64_t n_positions = 1024;
  std::int64_t vocab_size = 50257;
  std::int64_t n_inner = 0;  // 0 = 4 * n_embd
  double layer_norm_epsilon = 1e-5;
  Activation activation = Activation::GeluTanh;
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool tie_word_embeddings = true;
  std::int64_t bos_token_id = -1;  // -1 = vocab_size - 1
  std::int64_t eos_token_id = -1;

  std::int64_t d_mlp() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  std::int64_t d_head() const { return n_embd / n_head; }
  std::int64_t bos() const { return bos_token_id >= 0 ? bos_token_id : vocab_size - 1; }
  std::int64_t eos() const { return eos_token_id >= 0 ? eos_token_id : vocab_size - 1; }

  // Throws FormatError naming `where` and the offending key when a value is out of range.
  void validate(const std::string& where) const;
};

// Parses and validates; `text` is the file content, `where` names it in errors.
Config parse_config(const std::string& text, const std::string& where);
Config read_config(const std::filesystem::path& path);
// The JSON transformers would write for these sizes (what random-weight mode saves).
std::string config_to_json(const Config& c);

}  // namespace saelab::gpt2
