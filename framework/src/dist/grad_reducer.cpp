#include "saelab/dist/grad_reducer.hpp"

#include <chrono>

namespace saelab::dist {

void mean_of_summed(torch::Tensor& grad, std::int64_t n) {
  if (n != 1) grad.div_(static_cast<double>(n));
}

namespace {
struct Bucket {
  std::vector<std::size_t> params;  // indices into Impl::params
  torch::Tensor flat;               // [Σ numel] the bucket's gradients, reduced in place
  std::size_t pending = 0;          // gradients still to arrive this step
  bool launched = false;
  PendingReduce work;
};
}  // namespace

struct GradientReducer::Impl {
  ProcessGroup& group;
  std::vector<torch::Tensor> params;
  bool overlap;
  std::vector<Bucket> buckets;
  std::vector<std::size_t> bucket_of;   // param -> bucket
  std::vector<std::int64_t> offset_of;  // param -> offset in its bucket's flat
  std::vector<bool> arrived;            // param -> its gradient is in the bucket this step
  std::vector<unsigned> hooks;
  std::size_t next_launch = 0;
  bool armed = false;
  std::string what;
  ReduceStats stats;

  Impl(ProcessGroup& g, std::vector<torch::Tensor> p, std::int64_t bucket_bytes, bool ov)
      : group(g), params(std::move(p)), overlap(ov) {
    bucket_of.resize(params.size());
    offset_of.resize(params.size());
    arrived.assign(params.size(), false);
    std::int64_t filled = 0;
    for (std::size_t k = params.size(); k-- > 0;) {  // backward meets the last parameters first
      const torch::Tensor& t = params[k];
      SAELAB_CHECK(t.scalar_type() == params.front().scalar_type(), Error,
                   "gradient all-reduce: parameters of different dtypes (", t.scalar_type(), " and ",
                   params.front().scalar_type(), ") cannot share buckets");
      const std::int64_t bytes = t.numel() * static_cast<std::int64_t>(t.element_size());
      if (buckets.empty() || (filled > 0 && filled + bytes > bucket_bytes)) {
        buckets.emplace_back();
        filled = 0;
      }
      bucket_of[k] = buckets.size() - 1;
      offset_of[k] = filled / static_cast<std::int64_t>(t.element_size());
      buckets.back().params.push_back(k);
      filled += bytes;
    }
    for (auto& b : buckets) {
      std::int64_t n = 0;
      for (std::size_t k : b.params) n += params[k].numel();
      b.flat = torch::zeros({n}, params.front().options().requires_grad(false));
      stats.bytes_per_step += n * static_cast<std::int64_t>(b.flat.element_size());
    }
    stats.buckets = static_cast<std::int64_t>(buckets.size());
    if (!overlap) return;
    for (std::size_t k = 0; k < params.size(); ++k)
      hooks.push_back(params[k].register_hook([this, k](const torch::Tensor& g) { on_grad(k, g); }));
  }

  ~Impl() {
    for (std::size_t k = 0; k < hooks.size(); ++k) params[k].remove_hook(hooks[k]);
  }

  torch::Tensor slot(std::size_t k) {
    return buckets[bucket_of[k]].flat.narrow(0, offset_of[k], params[k].numel());
  }

  void put(std::size_t k, const torch::Tensor& g) {
    if (arrived[k]) return;
    torch::NoGradGuard no_grad;
    if (g.defined())
      slot(k).copy_(g.reshape({-1}));
    else
      slot(k).zero_();  // this rank's loss does not depend on the parameter this step
    arrived[k] = true;
    --buckets[bucket_of[k]].pending;
    launch_ready();
  }

  void on_grad(std::size_t k, const torch::Tensor& g) {
    if (armed) put(k, g);
  }

  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch];
      b.work = group.all_reduce_async(b.flat,
                                      cat(what, " (bucket ", next_launch + 1, " of ", buckets.size(), ")"));
      b.launched = true;
      ++next_launch;
    }
  }

  void reset(const std::string& w) {
    what = w;
    next_launch = 0;
    arrived.assign(params.size(), false);
    for (auto& b : buckets) {
      b.pending = b.params.size();
      b.launched = false;
    }
  }
};

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> params,
                                 std::int64_t bucket_bytes, bool overlap)
    : impl_(std::make_unique<Impl>(group, std::move(params), bucket_bytes, overlap)) {}
GradientReducer::~GradientReducer() = default;

void GradientReducer::prepare(const std::string& what) {
  impl_->reset(what);
  impl_->armed = impl_->overlap;
}

void GradientReducer::finish(std::int64_t local_terms) {
  Impl& s = *impl_;
  if (!s.armed) s.reset(s.what.empty() ? std::string("the gradient all-reduce") : s.what);
  s.armed = false;
  // Gradients that never reached a hook (or all of them, without overlap) are the .grad values.
  for (std::size_t k = 0; k < s.params.size(); ++k) s.put(k, s.params[k].grad());
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : s.buckets) b.work.wait();
  s.stats.wait_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++s.stats.steps;
  torch::NoGradGuard no_grad;
  for (auto& b : s.buckets) mean_of_summed(b.flat, s.group.size() * local_terms);
  // Into each .grad as backward laid it out (a transposed matmul's gradient stays transposed), so
  // what reads it afterwards (a projection, a norm) reduces in the order one process would.
  for (std::size_t k = 0; k < s.params.size(); ++k) {
    torch::Tensor& grad = s.params[k].mutable_grad();
    const torch::Tensor mean = s.slot(k).view_as(s.params[k]);
    if (grad.defined())
      grad.copy_(mean);
    else
      grad = mean.clone();
  }
}

const ReduceStats& GradientReducer::stats() const {
  return impl_->stats;
}

}  // namespace saelab::dist
