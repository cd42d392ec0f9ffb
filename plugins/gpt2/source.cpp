#include "source.hpp"

#include <algorithm>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "weights.hpp"

namespace saelab::gpt2 {
namespace fs = std::filesystem;
namespace {

struct TokenizerFiles {
  fs::path vocab, merges;
};

std::optional<TokenizerFiles> tokenizer_files_in(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec))
    return TokenizerFiles{dir / "vocab.json", dir / "merges.txt"};
  if (fs::exists(dir / "encoder.json", ec) && fs::exists(dir / "vocab.bpe", ec))
    return TokenizerFiles{dir / "encoder.json", dir / "vocab.bpe"};
  return std::nullopt;
}

}  // namespace

Gpt2Source::Gpt2Source(const SourceOptions& options)
    : TransformerSource("gpt2", "n_positions", options.device), dtype_(options.dtype) {
  SAELAB_CHECK(dtype_ == torch::kFloat32 || dtype_ == torch::kBFloat16, ConfigError,
               "gpt2: compute dtype must be float32 or bfloat16");
  auto loaded = load_model_dir(options.model_dir, dtype_, options.device);
  model_ = loaded.model;
  const Config& cfg = loaded.config;
  find_tokenizer(options);
  info_.model_id = options.model_id.empty() ? options.model_dir.string() : options.model_id;
  info_.config_hash = sha256_hex(loaded.config_sha256 + loaded.weights_sha256);
  info_.tokenizer_sha256 = tokenizer_ ? tokenizer_->sha256() : "";
  info_.vocab_size = cfg.vocab_size;
  info_.max_context = cfg.n_positions;
  info_.bos_token = static_cast<std::int32_t>(tokenizer_ ? tokenizer_->eot() : cfg.bos());
  info_.eos_token = static_cast<std::int32_t>(tokenizer_ ? tokenizer_->eot() : cfg.eos());
  if (tokenizer_) info_.special_tokens = tokenizer_->special_ids();
  info_.hooks = models::all_hooks(hook_shape());
  info_.hook_layers = models::all_hook_layers(hook_shape());
}

void Gpt2Source::find_tokenizer(const SourceOptions& options) {
  std::vector<fs::path> candidates;
  if (!options.tokenizer_dir.empty()) {
    SAELAB_CHECK(tokenizer_files_in(options.tokenizer_dir).has_value(), ConfigError,
                 "gpt2: tokenizer directory '", options.tokenizer_dir.string(),
                 "' holds neither vocab.json + merges.txt nor encoder.json + vocab.bpe");
    candidates.push_back(options.tokenizer_dir);
  }
  candidates.push_back(options.model_dir);
  candidates.push_back(fs::path("data") / "gpt2-tokenizer");
#ifdef SAELAB_GPT2_SOURCE_DIR
  candidates.push_back(fs::path(SAELAB_GPT2_SOURCE_DIR) / "data" / "gpt2-tokenizer");
#endif
  std::string looked;
  for (const auto& dir : candidates) {
    looked += (looked.empty() ? "" : ", ") + dir.string();
    auto files = tokenizer_files_in(dir);
    if (!files) continue;
    auto tok = text::BpeTokenizer::from_files(files->vocab, files->merges);
    if (tok.vocab_size() > config().vocab_size) {
      no_tokenizer_reason_ = cat("the tokenizer in ", dir.string(), " has ", tok.vocab_size(),
                                 " tokens but the model only ", config().vocab_size);
      return;
    }
    tokenizer_ = std::move(tok);
    return;
  }
  no_tokenizer_reason_ =
      cat("no tokenizer files (vocab.json + merges.txt or encoder.json + ", "vocab.bpe) in ", looked,
          "; run scripts/setup.sh or set the gpt2 ", "source's `tokenizer` option");
}

std::vector<std::int32_t> Gpt2Source::tokenize(std::string_view text) const {
  SAELAB_CHECK(tokenizer_.has_value(), ConfigError, "gpt2: cannot tokenize: ", no_tokenizer_reason_);
  return tokenizer_->encode(text);
}

std::string Gpt2Source::decode(const std::vector<std::int32_t>& tokens) const {
  SAELAB_CHECK(tokenizer_.has_value(), ConfigError, "gpt2: cannot decode: ", no_tokenizer_reason_);
  return tokenizer_->decode(tokens);
}

models::HookShape Gpt2Source::hook_shape() const {
  const Config& cfg = config();
  return {"GPT-2", cfg.n_layer, cfg.n_embd, cfg.d_mlp()};
}

torch::Tensor Gpt2Source::forward(const torch::Tensor& tokens, const models::RunPlan& plan) {
  return model_->run(tokens, plan);
}

}  // namespace saelab::gpt2
