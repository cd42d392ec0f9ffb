#include "saelab/models/transformer_source.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "saelab/core/error.hpp"

namespace saelab::models {
namespace {

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

torch::Tensor TransformerSource::prepare_tokens(const torch::Tensor& tokens) const {
  const SourceInfo& inf = info();
  SAELAB_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(0) > 0 && tokens.size(1) > 0, Error,
               prefix_, ": tokens must be a non-empty [batch, seq] tensor, got ",
               tokens.defined() ? tokens.sizes() : at::IntArrayRef{});
  SAELAB_CHECK(!at::isFloatingType(tokens.scalar_type()) && tokens.scalar_type() != torch::kBool, Error,
               prefix_, ": tokens must be integers, got ", tokens.scalar_type());
  SAELAB_CHECK(tokens.size(1) <= inf.max_context, Error, prefix_, ": sequences of ", tokens.size(1),
               " tokens exceed the model's context of ", inf.max_context, " (", context_key_, ")");
  auto t = tokens.to(device_, torch::kInt64).contiguous();
  const auto lo = t.min().item<std::int64_t>(), hi = t.max().item<std::int64_t>();
  SAELAB_CHECK(lo >= 0 && hi < inf.vocab_size, Error, prefix_, ": token ids must lie in [0, ", inf.vocab_size,
               "), got values from ", lo, " to ", hi);
  return t;
}

std::map<std::string, torch::Tensor> TransformerSource::run_with_hooks(
    const torch::Tensor& tokens, const std::vector<std::string>& hooks) {
  std::map<std::string, torch::Tensor> out;
  if (hooks.empty()) return out;
  const HookShape shape = hook_shape();
  std::map<HookPoint, std::string> names;
  std::set<HookPoint> points;
  for (const auto& name : hooks) {
    const HookPoint p = parse_hook(name, shape);
    names[p] = name;
    points.insert(p);
  }
  RunPlan plan = capture_plan(points, shape.n_layer);
  plan.visit = [&](const HookPoint& p, torch::Tensor& act) { out[names.at(p)] = act.to(torch::kFloat32); };
  {
    c10::InferenceMode guard;
    forward(prepare_tokens(tokens), plan);
  }
  for (auto& [name, t] : out) t = escape_inference(t);
  return out;
}

ModelOutput TransformerSource::run_with_replacement(const torch::Tensor& tokens, const std::string& hook,
                                                    const HookFn& fn, bool want_logits) {
  // A replacement is an edit that sees every position at once.
  EditSpan span;
  const std::vector<HookEdit> edits = {
      {hook, [&fn](const torch::Tensor& act, const EditSpan&) { return fn(act); }}};
  const RunPlan plan = edit_plan(edits, span);
  ModelOutput out;
  {
    c10::InferenceMode guard;
    const auto t = prepare_tokens(tokens);
    auto logits = forward(t, plan).to(torch::kFloat32);
    out.loss = next_token_loss(logits, t);
    if (want_logits) out.logits = std::move(logits);
  }
  out.loss = escape_inference(out.loss);
  out.logits = escape_inference(out.logits);
  return out;
}

torch::Tensor TransformerSource::logit_effects(const torch::Tensor& directions, const std::string& hook) {
  const HookShape shape = hook_shape();
  const HookPoint point = parse_hook(hook, shape);
  if (!is_residual(point.kind)) return {};
  SAELAB_CHECK(directions.dim() == 2 && directions.size(1) == shape.d_model, Error, prefix_,
               ": logit_effects needs directions [n, ", shape.d_model, "] for hook '", hook, "', got ",
               directions.sizes());
  torch::Tensor out;
  {
    c10::InferenceMode guard;
    const auto w_u = logit_unembedding().to(torch::kFloat32);        // [vocab, d]
    out = at::mm(directions.to(device_, torch::kFloat32), w_u.t());  // [n, vocab]
  }
  return escape_inference(out);
}

torch::Tensor TransformerSource::forward_cached(const torch::Tensor&, KvCache&, const RunPlan&) {
  throw Error(cat(prefix_, ": this model has no key/value cache"));
}

RunPlan TransformerSource::edit_plan(const std::vector<HookEdit>& edits, EditSpan& span) const {
  const HookShape shape = hook_shape();
  RunPlan plan;
  plan.n_blocks = shape.n_layer;
  plan.final_ln = plan.unembed = true;
  std::vector<std::pair<HookPoint, const HookEdit*>> edits_at;
  for (const HookEdit& e : edits) {
    SAELAB_CHECK(static_cast<bool>(e.fn), Error, prefix_, ": the edit at hook '", e.hook,
                 "' has no function");
    edits_at.emplace_back(parse_hook(e.hook, shape), &e);
    plan.hooks.insert(edits_at.back().first);
  }
  plan.visit = [this, edits_at, &span](const HookPoint& p, torch::Tensor& act) {
    for (const auto& [point, e] : edits_at) {
      if (!(point == p)) continue;
      auto edited = e->fn(act.to(torch::kFloat32), span);
      SAELAB_CHECK(edited.defined() && edited.sizes() == act.sizes(), Error, prefix_, ": the edit at hook '",
                   e->hook, "' returned shape ", edited.defined() ? edited.sizes() : at::IntArrayRef{},
                   ", expected ", act.sizes());
      act = edited.to(act.device(), act.scalar_type()).contiguous();
    }
  };
  return plan;
}

std::vector<std::int32_t> TransformerSource::generate(const std::vector<std::int32_t>& prompt,
                                                      const GenerateOptions& opts) {
  check_generate_options(opts);
  SAELAB_CHECK(!prompt.empty(), UsageError, prefix_, ": generate needs a prompt of at least one token");
  const std::int64_t total = static_cast<std::int64_t>(prompt.size()) + opts.max_new_tokens;
  SAELAB_CHECK(total <= info().max_context, UsageError, prefix_, ": a prompt of ", prompt.size(),
               " tokens plus ", opts.max_new_tokens, " new ones is ", total,
               " tokens, more than the model's context of ", info().max_context, " (", context_key_,
               "); shorten the prompt or ask for fewer tokens");
  DetRng rng(opts.seed);
  EditSpan span{0, static_cast<std::int64_t>(prompt.size())};
  const RunPlan plan = edit_plan(opts.edits, span);
  auto as_tensor = [](const std::vector<std::int32_t>& v, std::size_t from) {
    std::vector<std::int64_t> w(v.begin() + static_cast<std::ptrdiff_t>(from), v.end());
    return torch::tensor(w, torch::kInt64).unsqueeze(0);
  };
  c10::InferenceMode guard;
  std::unique_ptr<KvCache> cache = opts.use_cache ? new_cache() : nullptr;
  std::vector<std::int32_t> all = prompt, out;
  while (static_cast<std::int64_t>(out.size()) < opts.max_new_tokens) {
    torch::Tensor logits;  // [1, T, vocab]
    if (cache) {
      span.first = cache->length;
      logits = forward_cached(prepare_tokens(as_tensor(all, static_cast<std::size_t>(cache->length))), *cache,
                              plan);
    } else {
      span.first = 0;
      logits = forward(prepare_tokens(as_tensor(all, 0)), plan);
    }
    const std::int32_t token = next_token(logits[0][logits.size(1) - 1], opts, rng);
    out.push_back(token);
    all.push_back(token);
    if (token == opts.stop_token) break;
  }
  return out;
}

}  // namespace saelab::models
