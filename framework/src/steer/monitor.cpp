#include "saelab/steer/monitor.hpp"

#include <algorithm>
#include <chrono>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/core/numbers.hpp"
#include "saelab/sae/apply.hpp"

namespace saelab {

WatchSpec parse_watch(const std::string& spec) {
  constexpr const char* kForms =
      "write LATENT (threshold from the default quantile), LATENT:THRESHOLD or LATENT:qQUANTILE, e.g. 123, "
      "123:4.5, 123:q0.999";
  WatchSpec w;
  const auto colon = spec.find(':');
  const std::string id = spec.substr(0, colon);
  const auto latent = parse_integer(id);
  SAELAB_CHECK(latent && *latent >= 0, UsageError, "--watch '", spec, "': '", id, "' is not a latent index; ",
               kForms);
  w.latent = *latent;
  if (colon == std::string::npos) return w;
  std::string v = spec.substr(colon + 1);
  const bool quantile = !v.empty() && v[0] == 'q';
  if (quantile) v.erase(0, 1);
  const auto x = parse_finite_number(v);
  SAELAB_CHECK(x && *x >= 0 && (!quantile || *x <= 1), UsageError, "--watch '", spec, "': '",
               spec.substr(colon + 1), "' is not a threshold >= 0 or a quantile q0..q1; ", kForms);
  (quantile ? w.quantile : w.threshold) = *x;
  return w;
}

std::vector<WatchedLatent> resolve_watches(const std::vector<WatchSpec>& specs, double default_quantile,
                                           const LatentReference* reference, std::int64_t d_sae) {
  SAELAB_CHECK(!specs.empty(), UsageError, "name at least one latent to watch, e.g. --watch 123");
  std::vector<WatchedLatent> out;
  for (const WatchSpec& s : specs) {
    SAELAB_CHECK(s.latent < d_sae, UsageError, "--watch ", s.latent, ": the SAE has latents 0 to ",
                 d_sae - 1);
    WatchedLatent w{s.latent, s.threshold, "given"};
    if (s.threshold < 0) {
      const double q = s.quantile >= 0 ? s.quantile : default_quantile;
      SAELAB_CHECK(reference, UsageError, "--watch ", s.latent,
                   " needs a threshold from reference activations, and there are none; give one (", s.latent,
                   ":THRESHOLD) or a reference corpus");
      w.threshold = reference->quantile(s.latent, q);
      w.origin = cat("q", q, " of ", reference->rows, " reference rows");
    }
    out.push_back(w);
  }
  return out;
}

Monitor::Monitor(ActivationSource& source, SaeArchitecture& sae, std::string hook,
                 std::vector<WatchedLatent> watched, MonitorOptions opts, MonitorEmit emit)
    : source_(source),
      sae_(sae),
      hook_(std::move(hook)),
      watched_(std::move(watched)),
      opts_(std::move(opts)),
      emit_(std::move(emit)) {
  eval_from_ = std::max<std::int64_t>(0, opts_.skip - (opts_.prepend_bos ? 1 : 0));
  const std::int64_t room = source_.info().max_context - (opts_.prepend_bos ? 1 : 0);
  SAELAB_CHECK(opts_.window > eval_from_ && opts_.window <= room, UsageError, "monitor window of ",
               opts_.window, " tokens: it must exceed the ", eval_from_,
               " unevaluated first positions and fit the model's context (", room, " tokens)");
  SAELAB_CHECK(opts_.batch >= 1 && opts_.context_tokens >= 0 && opts_.max_hits >= 1, UsageError,
               "monitor batch, context and hit limits must be positive");
  std::sort(opts_.excluded_tokens.begin(), opts_.excluded_tokens.end());
  for (const auto& w : watched_) latent_ids_.push_back(w.latent);
}

void Monitor::add(const StreamDocument& doc) {
  std::vector<std::int32_t> toks = source_.tokenize(doc.text);
  const std::int64_t e = eval_from_;
  if (doc.continued) {
    toks.insert(toks.begin(), tail_.begin(), tail_.end());
    doc_offset_ -= static_cast<std::int64_t>(tail_.size());
  } else {
    next_window_ = 0;
    doc_offset_ = 0;
    ++stats_.documents;
  }
  const auto n = static_cast<std::int64_t>(toks.size());
  const std::int64_t c = opts_.context_tokens, W = opts_.window;
  auto slice = [&](std::int64_t a, std::int64_t b) {
    a = std::clamp<std::int64_t>(a, 0, n);
    b = std::clamp<std::int64_t>(b, a, n);
    return std::vector<std::int32_t>(toks.begin() + a, toks.begin() + b);
  };
  for (std::int64_t s = 0; s + e < n; s += W - e) {
    pending_.push_back(
        {doc.id, next_window_++, doc_offset_ + s, slice(s, s + W), slice(s - c, s), slice(s + W, s + W + c)});
    if (static_cast<std::int64_t>(pending_.size()) >= opts_.batch) run_batch();
    if (s + W >= n) break;
  }
  tail_ = slice(n - e, n);
  doc_offset_ += n;
}

void Monitor::flush() {
  if (!pending_.empty()) run_batch();
}

void Monitor::run_batch() {
  const std::int64_t bos = opts_.prepend_bos ? 1 : 0;
  std::int64_t T = 0;
  for (const Window& w : pending_)
    T = std::max<std::int64_t>(T, static_cast<std::int64_t>(w.content.size()) + bos);
  const auto B = static_cast<std::int64_t>(pending_.size());
  auto tokens = at::zeros({B, T}, torch::kInt64);  // right padding with id 0, never evaluated
  auto acc = tokens.accessor<std::int64_t, 2>();
  std::vector<std::int64_t> rows;  // flat (b * T + t) of every evaluated position
  for (std::int64_t b = 0; b < B; ++b) {
    const Window& w = pending_[static_cast<std::size_t>(b)];
    if (bos) acc[b][0] = source_.info().bos_token;
    for (std::size_t i = 0; i < w.content.size(); ++i) {
      acc[b][static_cast<std::int64_t>(i) + bos] = w.content[i];
      if (static_cast<std::int64_t>(i) >= eval_from_ &&
          !std::binary_search(opts_.excluded_tokens.begin(), opts_.excluded_tokens.end(), w.content[i]))
        rows.push_back(b * T + static_cast<std::int64_t>(i) + bos);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto acts = source_.run_with_hooks(tokens, {hook_}).at(hook_);  // [B, T, d]
  stats_.model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto row_index = torch::tensor(rows, torch::kInt64);
  auto x = acts.reshape({B * T, -1}).index_select(0, row_index);  // [R, d]
  torch::Tensor f;
  {
    torch::NoGradGuard no_grad;
    EvalModeGuard eval(sae_);
    f = encode_sae(sae_, x, 1.0)
            .index_select(1, torch::tensor(latent_ids_, torch::kInt64))
            .to(torch::kCPU);  // [R, k]
  }
  // Each window's evaluated activations as [T, k], zero where not evaluated.
  auto grid = at::zeros({B * T, static_cast<std::int64_t>(latent_ids_.size())}, torch::kFloat32);
  grid.index_copy_(0, row_index, f.to(torch::kFloat32));
  grid = grid.view({B, T, -1});
  for (std::int64_t b = 0; b < B; ++b) {
    const auto line = window_result(pending_[static_cast<std::size_t>(b)], grid[b], bos);
    if (!line.is_null()) emit_(line);
  }
  stats_.windows += B;
  stats_.tokens += static_cast<std::int64_t>(rows.size());
  pending_.clear();
}

nlohmann::json Monitor::window_result(const Window& w, const torch::Tensor& acts, std::int64_t offset) {
  const auto a = acts.contiguous();  // [T, k]
  const auto acc = a.accessor<float, 2>();
  const auto n = static_cast<std::int64_t>(w.content.size());
  nlohmann::json fired = nlohmann::json::array();
  for (std::size_t j = 0; j < watched_.size(); ++j) {
    const WatchedLatent& wl = watched_[j];
    nlohmann::json hits = nlohmann::json::array();
    std::int64_t count = 0;
    float peak = 0;
    for (std::int64_t i = eval_from_; i < n; ++i) {
      const float v = acc[i + offset][static_cast<std::int64_t>(j)];
      if (!(v > wl.threshold)) continue;
      ++count;
      peak = std::max(peak, v);
      if (static_cast<std::int64_t>(hits.size()) >= opts_.max_hits) continue;
      const auto c = opts_.context_tokens;
      std::vector<std::int32_t> left(w.before), right;
      left.insert(left.end(), w.content.begin() + std::max<std::int64_t>(0, i - c), w.content.begin() + i);
      if (left.size() > static_cast<std::size_t>(c)) left.erase(left.begin(), left.end() - c);
      right.assign(w.content.begin() + i + 1, w.content.begin() + std::min(n, i + 1 + c));
      for (std::size_t r = 0; right.size() < static_cast<std::size_t>(c) && r < w.after.size(); ++r)
        right.push_back(w.after[r]);
      const std::string token = source_.decode({w.content[static_cast<std::size_t>(i)]});
      hits.push_back({{"pos", w.first + i},
                      {"token", token},
                      {"activation", v},
                      {"context", source_.decode(left) + "[[" + token + "]]" + source_.decode(right)}});
    }
    if (count == 0) continue;
    stats_.hits += count;
    fired.push_back({{"latent", wl.latent},
                     {"threshold", wl.threshold},
                     {"max", peak},
                     {"count", count},
                     {"hits", hits}});
  }
  if (!fired.empty()) ++stats_.fired_windows;
  if (fired.empty() && !opts_.all_windows) return nullptr;
  return {{"doc", w.doc}, {"window", w.index}, {"tokens", {w.first, w.first + n}}, {"fired", fired}};
}

}  // namespace saelab
