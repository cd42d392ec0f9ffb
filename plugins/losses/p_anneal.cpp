// lp_anneal (p_anneal.hpp).
#include "p_anneal.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include <torch/csrc/autograd/grad_mode.h>

#include "saelab/core/error.hpp"
#include "saelab/core/plugin_api.hpp"
#include "saelab/interfaces/loss.hpp"
#include "saelab/sae/loss_math.hpp"
#include "loss_options.hpp"

namespace saelab::losses {
namespace {
using nlohmann::json;

struct PAnnealConfig {
  double coefficient = 5.0;  // initial α
  double warmup_fraction = 0.05;
  double p_start = 1.0;
  double p_end = 0.5;
  double anneal_start = 0.25;  // fractions of the training steps
  double anneal_end = 1.0;
  std::int64_t updates = 10;
  std::int64_t queue_length = 10;
  bool pth_root = true;  // form "lp"; false: "lp^p"
};

// The steps at which p moves on and the values it takes, as dictionary_learning computes them:
// linspace(start, end, n) truncated to integers, and linspace(p_start, p_end, n).
struct AnnealPlan {
  std::vector<std::int64_t> steps;
  std::vector<double> p_values;
};

AnnealPlan plan(const PAnnealConfig& c, std::int64_t total_steps) {
  AnnealPlan a;
  const double s0 = std::floor(c.anneal_start * double(total_steps));
  const double s1 = std::floor(c.anneal_end * double(total_steps));
  for (std::int64_t i = 0; i < c.updates; ++i) {
    const double t = c.updates == 1 ? 0.0 : double(i) / double(c.updates - 1);
    a.steps.push_back(static_cast<std::int64_t>(s0 + (s1 - s0) * t));
    a.p_values.push_back(c.p_start + (c.p_end - c.p_start) * t);
  }
  return a;
}

class PAnnealLoss : public Loss {
 public:
  explicit PAnnealLoss(const PAnnealConfig& c) : cfg_(c), p_(c.p_start), alpha_(c.coefficient) {}

  std::string name() const override { return "lp_anneal"; }

  torch::Tensor compute(const LossContext& ctx) override {
    const torch::Tensor& z = ctx.out.latents;
    torch::Tensor lp = loss_math::lp_sparsity(z, p_, cfg_.pth_root);
    scale_ = scheduled(alpha_, cfg_.warmup_fraction, ctx.progress);
    used_p_ = p_;
    torch::Tensor loss = lp * scale_;
    if (next_p_) {
      torch::NoGradGuard no_grad;
      seen_.current += lp.item<double>();
      seen_.next += loss_math::lp_sparsity(z.detach(), *next_p_, cfg_.pth_root).item<double>();
    }
    return loss;
  }

  // The batch means of Lp at the current and the next p, summed over this step's compute() calls.
  std::vector<double> step_sums() const override { return {seen_.current, seen_.next}; }

  // The queue holds the whole batch's means (the mean of the parts' means); p and α move here, so
  // every micro-batch of a step uses the same p.
  void end_step(const std::vector<double>& sums, std::int64_t parts, const TrainProgress& progress) override {
    SAELAB_CHECK(sums.size() == 2 && parts >= 1, Error, "lp_anneal: end_step got ", sums.size(),
                 " sums from ", parts, " parts; expected the 2 of step_sums() from at least 1");
    if (next_p_) {
      queue_.push_back({sums[0] / double(parts), sums[1] / double(parts)});
      while (std::int64_t(queue_.size()) > cfg_.queue_length) queue_.pop_front();
    }
    seen_ = {};
    advance(progress);
  }

  json state() const override {
    json queue = json::array();
    for (const auto& q : queue_) queue.push_back({q.current, q.next});
    return {{"p", p_},
            {"next_p", next_p_ ? json(*next_p_) : json(nullptr)},
            {"updates_done", count_},
            {"alpha", alpha_},
            {"queue", queue}};
  }

  void load_state(const json& s, const std::string& where) override;

  std::map<std::string, double> metrics() const override { return {{"p", used_p_}, {"coefficient", scale_}}; }

 private:
  struct Recent {
    double current;  // Lp of the batch at the current p
    double next;     // ... at the next p
  };

  // At the planned steps p takes its next value, and α is rescaled by the recent ratio of the
  // penalty at the old and the new p (dictionary_learning's adaptive coefficient).
  void advance(const TrainProgress& progress) {
    if (plan_.steps.empty()) plan_ = plan(cfg_, progress.total_steps);
    const std::int64_t step = progress.step;
    if (count_ >= std::int64_t(plan_.steps.size()) || step < plan_.steps[count_]) return;
    if (std::find(plan_.steps.begin(), plan_.steps.end(), step) == plan_.steps.end()) return;
    if (next_p_ && !queue_.empty()) {
      double cur = 0, nxt = 0;
      for (const auto& q : queue_) cur += q.current, nxt += q.next;
      if (nxt > 0 && cur > 0) alpha_ *= cur / nxt;
    }
    p_ = plan_.p_values[count_];
    next_p_ = count_ + 1 < std::int64_t(plan_.p_values.size()) ? plan_.p_values[count_ + 1] : cfg_.p_end;
    ++count_;
  }

  PAnnealConfig cfg_;
  AnnealPlan plan_;  // made at the first step, when the number of steps is known
  double p_;
  std::optional<double> next_p_;
  std::int64_t count_ = 0;  // p values taken so far
  double alpha_;
  double scale_ = 0;   // α with its warm-up at the last step (logged)
  double used_p_ = 0;  // p at the last step (logged)
  std::deque<Recent> queue_;
  Recent seen_{0, 0};  // this step's compute() calls so far (step_sums)
};

double number(const json& s, const char* key, const std::string& where) {
  SAELAB_CHECK(s.contains(key) && s[key].is_number() && std::isfinite(s[key].get<double>()), FormatError,
               where, ": lp_anneal state key '", key, "' must be a finite number, got ",
               s.contains(key) ? s[key].dump() : std::string("nothing"));
  return s[key].get<double>();
}

void PAnnealLoss::load_state(const json& s, const std::string& where) {
  SAELAB_CHECK(s.is_object(), FormatError, where, ": lp_anneal state must be an object, got ", s.dump());
  const double p = number(s, "p", where), alpha = number(s, "alpha", where);
  const double count = number(s, "updates_done", where);
  SAELAB_CHECK(
      p > 0 && alpha >= 0 && count >= 0 && count <= double(cfg_.updates) && count == std::floor(count),
      FormatError, where, ": lp_anneal state has p = ", p, ", alpha = ", alpha, ", updates_done = ", count,
      "; allowed: p > 0, alpha ≥ 0, updates_done an integer in [0, ", cfg_.updates, "]");
  std::optional<double> next;
  if (s.contains("next_p") && !s["next_p"].is_null()) next = number(s, "next_p", where);
  SAELAB_CHECK(
      s.contains("queue") && s["queue"].is_array() && std::int64_t(s["queue"].size()) <= cfg_.queue_length,
      FormatError, where, ": lp_anneal state key 'queue' must be an array of at most ", cfg_.queue_length,
      " [current, next] pairs");
  std::deque<Recent> queue;
  for (const auto& q : s["queue"]) {
    SAELAB_CHECK(q.is_array() && q.size() == 2 && q[0].is_number() && q[1].is_number(), FormatError, where,
                 ": lp_anneal state queue entry ", q.dump(), " must be a pair of numbers");
    queue.push_back({q[0].get<double>(), q[1].get<double>()});
  }
  p_ = p;
  alpha_ = alpha;
  count_ = static_cast<std::int64_t>(count);
  next_p_ = next;
  queue_ = std::move(queue);
}

OptionSchema schema() {
  OptionSchema s = coefficient_schema(5.0, true, 0.05);
  s.real("p_start", 1.0, "exponent p before annealing (1: the L1 penalty)").above(0).at_most(2);
  s.real("p_end", 0.5, "the last exponent p reaches (the annealing target)").above(0).at_most(2);
  s.real("anneal_start", 0.25, "fraction of training at which p starts to move").at_least(0).at_most(1);
  s.real("anneal_end", 1.0, "fraction of training by which p reaches p_end").at_least(0).at_most(1);
  s.integer("updates", 10, "number of values p steps through (and coefficient adaptations)").at_least(1);
  s.integer("queue_length", 10, "recent batches averaged to adapt the coefficient when p moves").at_least(1);
  s.choice("form", "lp", {"lp", "lp^p"}, "lp: mean_b (Σ z^p)^(1/p); lp^p: mean_b Σ z^p");
  return s;
}

PAnnealConfig read_config(const Options& o) {
  PAnnealConfig c;
  c.coefficient = checked_coefficient(o);
  c.warmup_fraction = checked_warmup(o);
  c.p_start = o.real("p_start");
  c.p_end = o.real("p_end");
  if (!(c.p_start > 0 && c.p_start <= 2))
    o.fail("p_start", cat("p_start = ", c.p_start, " must be in (0, 2]"));
  if (!(c.p_end > 0 && c.p_end <= c.p_start))
    o.fail("p_end", cat("p_end = ", c.p_end, " must be in (0, p_start = ", c.p_start,
                        "]: p anneals downwards, and p = 0 has no gradient"));
  c.anneal_start = o.real("anneal_start");
  c.anneal_end = o.real("anneal_end");
  if (!(c.anneal_start >= 0 && c.anneal_start <= c.anneal_end && c.anneal_end <= 1))
    o.fail("anneal_end", cat("anneal_start = ", c.anneal_start, " and anneal_end = ", c.anneal_end,
                             " must satisfy 0 ≤ anneal_start ≤ anneal_end ≤ 1"));
  c.updates = o.integer("updates");
  if (c.updates < 1) o.fail("updates", cat("updates = ", c.updates, " must be ≥ 1"));
  c.queue_length = o.integer("queue_length");
  if (c.queue_length < 1) o.fail("queue_length", cat("queue_length = ", c.queue_length, " must be ≥ 1"));
  c.pth_root = o.string("form") == "lp";
  return c;
}

}  // namespace

void register_p_anneal(Registrar& r) {
  r.add<Loss>("lp_anneal",
              "p-annealed Lp sparsity penalty: p moves from p_start towards p_end, the coefficient "
              "adapts so the penalty stays continuous (dictionary_learning's PAnnealTrainer)",
              schema(), [](const Options& o, const PluginContext&) {
                return std::make_unique<PAnnealLoss>(read_config(o));
              });
}

}  // namespace saelab::losses
