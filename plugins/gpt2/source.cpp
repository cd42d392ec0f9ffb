#include "source.hpp"

#include <algorithm>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "hooks.hpp"
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

// Tensors made under InferenceMode cannot take part in autograd later (an SAE trained on them
// would fail); callers get ordinary tensors.
torch::Tensor escape_inference(const torch::Tensor& t) {
  return t.defined() && t.is_inference() ? t.clone() : t;
}

}  // namespace

torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& tokens) {
  const auto T = logits.size(1);
  auto pred = logits.slice(1, 0, T - 1);              // [B, T-1, V]
  auto target = tokens.slice(1, 1, T).unsqueeze(-1);  // [B, T-1, 1]
  return at::logsumexp(pred, -1) - pred.gather(-1, target).squeeze(-1);
}

Gpt2Source::Gpt2Source(const SourceOptions& options) : device_(options.device), dtype_(options.dtype) {
  SAELAB_CHECK(dtype_ == torch::kFloat32 || dtype_ == torch::kBFloat16, ConfigError,
               "gpt2: compute dtype must be float32 or bfloat16");
  auto loaded = load_model_dir(options.model_dir, dtype_, device_);
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
  info_.hooks = all_hooks(cfg);
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
    auto tok = Tokenizer::from_files(files->vocab, files->merges);
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

torch::Tensor Gpt2Source::prepare_tokens(const torch::Tensor& tokens) const {
  const Config& cfg = config();
  SAELAB_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(0) > 0 && tokens.size(1) > 0, Error,
               "gpt2: tokens must be a non-empty [batch, seq] tensor, got ",
               tokens.defined() ? tokens.sizes() : at::IntArrayRef{});
  SAELAB_CHECK(!at::isFloatingType(tokens.scalar_type()) && tokens.scalar_type() != torch::kBool, Error,
               "gpt2: tokens must be integers, got ", tokens.scalar_type());
  SAELAB_CHECK(tokens.size(1) <= cfg.n_positions, Error, "gpt2: sequences of ", tokens.size(1),
               " tokens exceed the model's context of ", cfg.n_positions, " (n_positions)");
  auto t = tokens.to(device_, torch::kInt64).contiguous();
  const auto lo = t.min().item<std::int64_t>(), hi = t.max().item<std::int64_t>();
  SAELAB_CHECK(lo >= 0 && hi < cfg.vocab_size, Error, "gpt2: token ids must lie in [0, ", cfg.vocab_size,
               "), got values from ", lo, " to ", hi);
  return t;
}

std::map<std::string, torch::Tensor> Gpt2Source::run_with_hooks(const torch::Tensor& tokens,
                                                                const std::vector<std::string>& hooks) {
  std::map<std::string, torch::Tensor> out;
  if (hooks.empty()) return out;
  const Config& cfg = config();
  RunPlan plan;
  std::map<HookPoint, std::string> names;
  for (const auto& name : hooks) {
    const HookPoint p = parse_hook(name, cfg);
    names[p] = name;
    plan.hooks.insert(p);
    // Stop after the last block any requested hook needs (resid_pre of L needs blocks < L).
    const std::int64_t needs = p.kind == HookKind::ResidPre ? p.layer : std::min(p.layer + 1, cfg.n_layer);
    plan.n_blocks = std::max(plan.n_blocks, needs);
    plan.final_ln = plan.final_ln || p.kind == HookKind::LnFinal;
  }
  plan.visit = [&](const HookPoint& p, torch::Tensor& act) { out[names.at(p)] = act.to(torch::kFloat32); };
  {
    c10::InferenceMode guard;
    model_->run(prepare_tokens(tokens), plan);
  }
  for (auto& [name, t] : out) t = escape_inference(t);
  return out;
}

ModelOutput Gpt2Source::run_with_replacement(const torch::Tensor& tokens, const std::string& hook,
                                             const HookFn& fn, bool want_logits) {
  const Config& cfg = config();
  const HookPoint point = parse_hook(hook, cfg);
  RunPlan plan;
  plan.n_blocks = cfg.n_layer;
  plan.final_ln = plan.unembed = true;
  plan.hooks.insert(point);
  plan.visit = [&](const HookPoint&, torch::Tensor& act) {
    auto replaced = fn(act.to(torch::kFloat32));
    SAELAB_CHECK(replaced.defined() && replaced.sizes() == act.sizes(), Error,
                 "gpt2: the replacement for hook '", hook, "' returned shape ",
                 replaced.defined() ? replaced.sizes() : at::IntArrayRef{}, ", expected ", act.sizes());
    act = replaced.to(act.device(), act.scalar_type()).contiguous();
  };
  ModelOutput out;
  {
    c10::InferenceMode guard;
    const auto t = prepare_tokens(tokens);
    auto logits = model_->run(t, plan).to(torch::kFloat32);
    out.loss = next_token_loss(logits, t);
    if (want_logits) out.logits = std::move(logits);
  }
  out.loss = escape_inference(out.loss);
  out.logits = escape_inference(out.logits);
  return out;
}

torch::Tensor Gpt2Source::logit_effects(const torch::Tensor& directions, const std::string& hook) {
  const Config& cfg = config();
  const HookPoint point = parse_hook(hook, cfg);
  if (!is_residual(point.kind)) return {};
  SAELAB_CHECK(directions.dim() == 2 && directions.size(1) == cfg.n_embd, Error,
               "gpt2: logit_effects needs directions [n, ", cfg.n_embd, "] for hook '", hook, "', got ",
               directions.sizes());
  torch::Tensor out;
  {
    c10::InferenceMode guard;
    const auto w_u = model_->unembedding().to(torch::kFloat32);      // [vocab, d]
    out = at::mm(directions.to(device_, torch::kFloat32), w_u.t());  // [n, vocab]
  }
  return escape_inference(out);
}

}  // namespace saelab::gpt2
