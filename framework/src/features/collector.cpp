#include "saelab/features/collector.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>

#include <ATen/Parallel.h>

#include "saelab/core/det_rng.hpp"
#include "saelab/core/error.hpp"

namespace saelab {

double pow2_at_least(double v) {
  int e = 0;
  const double m = std::frexp(v, &e);  // v = m * 2^e, m in [0.5, 1)
  return m == 0.5 ? v : std::ldexp(1.0, e);
}

std::int64_t fine_bin(double v, double range, std::int64_t bins) {
  // range is a power of two, so t at 2·range is exactly half of t at range (scaling by two
  // commutes with rounding): a value's bin at 2·range is its bin at range halved, and bins merge
  // exactly.
  const double t = (v / range) * static_cast<double>(bins);
  const auto i = static_cast<std::int64_t>(std::ceil(t)) - 1;
  return std::clamp<std::int64_t>(i, 0, bins - 1);
}

std::uint64_t sample_priority(std::uint64_t seed, std::int64_t latent, std::int64_t seq, std::int64_t pos) {
  return derive_seed(seed, static_cast<std::uint64_t>(latent), static_cast<std::uint64_t>(seq),
                     static_cast<std::uint64_t>(pos));
}

namespace {

// The two orders, for public examples and for the collector's slots alike.
template <class E>
bool ranks_order(const E& a, const E& b) {
  if (a.act != b.act) return a.act > b.act;
  if (a.seq != b.seq) return a.seq < b.seq;
  return a.pos < b.pos;
}

template <class E>
bool sampled_order(const E& a, const E& b) {
  if (a.priority != b.priority) return a.priority < b.priority;
  if (a.seq != b.seq) return a.seq < b.seq;
  return a.pos < b.pos;
}

}  // namespace

bool ranks_before(const FeatureExample& a, const FeatureExample& b) {
  return ranks_order(a, b);
}

bool sampled_before(const FeatureExample& a, const FeatureExample& b) {
  return sampled_order(a, b);
}

namespace {

// One kept example's metadata; its window (tokens and this latent's activations) is in the slab.
struct Slot {
  float act = 0;
  std::int32_t len = 0;
  std::int64_t seq = 0, pos = 0, start = 0;
  std::uint64_t priority = 0;
};

bool slot_ranks_before(const Slot& a, const Slot& b) {
  return ranks_order(a, b);
}

bool slot_sampled_before(const Slot& a, const Slot& b) {
  return sampled_order(a, b);
}

// Candidates of a band merge, staged so the merged band may overwrite its own sources.
struct Staging {
  std::vector<Slot> slots;
  std::vector<std::int32_t> tokens;
  std::vector<float> acts;
  std::vector<std::int32_t> order;
};

}  // namespace

// Every latent's state lives in flat arrays allocated once, at construction: a scan of any length
// then allocates nothing per example. (Allocating small window buffers while the chunks' large
// tensors come and go fragments the heap until RSS grows with the token count.)
// Slots of latent j: [j*S, (j+1)*S); the top-k use slots [0, K), fine band b [K + b*M, K + (b+1)*M).
// heap[] holds, per region, the region's slot ids arranged as a heap whose front comes last.
struct FeatureCollector::Impl {
  std::int64_t d_sae = 0;
  FeatureOptions opts;
  std::int64_t tokens = 0;
  std::int64_t W = 0, S = 0, H = 0, NB = 0, K = 0, M = 0;
  std::vector<std::int64_t> count;
  std::vector<double> sum, range;
  std::vector<float> max;
  std::vector<std::int64_t> hist;        // [d_sae, H]
  std::vector<std::int64_t> band_count;  // [d_sae, NB]
  std::vector<Slot> slots;               // [d_sae, S]
  std::vector<std::int32_t> win_tokens;  // [d_sae, S, W]
  std::vector<float> win_acts;           // [d_sae, S, W]
  std::vector<std::int32_t> heap;        // [d_sae, S]
  std::vector<std::int32_t> top_n;       // [d_sae]
  std::vector<std::int32_t> band_n;      // [d_sae, NB]

  void allocate() {
    W = opts.context_left + opts.context_right + 1;
    K = opts.top_k;
    M = opts.band_samples;
    NB = 2 * opts.bands;
    H = opts.histogram_bins;
    S = K + NB * M;
    const auto d = static_cast<std::size_t>(d_sae);
    count.assign(d, 0);
    sum.assign(d, 0);
    range.assign(d, 0);
    max.assign(d, 0);
    hist.assign(d * static_cast<std::size_t>(H), 0);
    band_count.assign(d * static_cast<std::size_t>(NB), 0);
    slots.assign(d * static_cast<std::size_t>(S), Slot{});
    win_tokens.assign(d * static_cast<std::size_t>(S * W), -1);
    win_acts.assign(d * static_cast<std::size_t>(S * W), 0.0f);
    heap.assign(d * static_cast<std::size_t>(S), 0);
    top_n.assign(d, 0);
    band_n.assign(d * static_cast<std::size_t>(NB), 0);
  }

  Slot& slot(std::int64_t j, std::int64_t id) { return slots[static_cast<std::size_t>(j * S + id)]; }
  const Slot& slot(std::int64_t j, std::int64_t id) const {
    return slots[static_cast<std::size_t>(j * S + id)];
  }
  std::size_t window(std::int64_t j, std::int64_t id) const {
    return static_cast<std::size_t>((j * S + id) * W);
  }

  // Writes the example at row r of the chunk into slot `id` of latent j (`lat`: [n, d_sae]).
  void fill(std::int64_t j, std::int64_t id, const ScanChunk& c, const float* lat, std::int64_t r, float v,
            std::uint64_t prio) {
    const auto& q = c.sequences[static_cast<std::size_t>(c.row_sequence[static_cast<std::size_t>(r)])];
    const std::int64_t at = c.row_offset[static_cast<std::size_t>(r)];
    const std::int64_t lo = std::max<std::int64_t>(0, at - opts.context_left);
    const std::int64_t hi =
        std::min<std::int64_t>(static_cast<std::int64_t>(q.tokens.size()), at + opts.context_right + 1);
    Slot& s = slot(j, id);
    s = Slot{v, static_cast<std::int32_t>(hi - lo), q.seq, q.start + at, q.start + lo, prio};
    const std::size_t w = window(j, id);
    for (std::int64_t i = lo; i < hi; ++i) {
      const std::int64_t row = q.rows[static_cast<std::size_t>(i)];
      win_tokens[w + static_cast<std::size_t>(i - lo)] = q.tokens[static_cast<std::size_t>(i)];
      win_acts[w + static_cast<std::size_t>(i - lo)] =
          row < 0 ? std::numeric_limits<float>::quiet_NaN() : lat[row * d_sae + j];
    }
  }

  // Adds row r's example to the heap region [base, base + cap) of latent j holding n examples.
  template <class Before>
  void insert(std::int64_t j, std::int64_t base, std::int64_t cap, std::int32_t& n, Before before,
              const ScanChunk& c, const float* lat, std::int64_t r, float v, std::uint64_t prio) {
    std::int32_t* h = &heap[static_cast<std::size_t>(j * S + base)];
    auto cmp = [&](std::int32_t a, std::int32_t b) { return before(slot(j, a), slot(j, b)); };
    std::int32_t id = 0;
    if (n == cap) {
      std::pop_heap(h, h + n, cmp);  // the evicted example's slot is now last
      id = h[n - 1];
    } else {
      id = static_cast<std::int32_t>(base + n);
      h[n++] = id;
    }
    fill(j, id, c, lat, r, v, prio);
    std::push_heap(h, h + n, cmp);
  }

  // Band `to` becomes the first M of bands `a` and `b` (to <= a < b; staged, so `to` may be `a`).
  void merge_bands(std::int64_t j, std::int64_t to, std::int64_t a, std::int64_t b, Staging& st) {
    st.slots.clear();
    st.tokens.clear();
    st.acts.clear();
    for (std::int64_t band : {a, b}) {
      const std::int32_t n = band_n[static_cast<std::size_t>(j * NB + band)];
      for (std::int32_t i = 0; i < n; ++i) {
        const std::int64_t id = K + band * M + i;
        st.slots.push_back(slot(j, id));
        const std::size_t w = window(j, id);
        st.tokens.insert(st.tokens.end(), win_tokens.begin() + static_cast<std::ptrdiff_t>(w),
                         win_tokens.begin() + static_cast<std::ptrdiff_t>(w + W));
        st.acts.insert(st.acts.end(), win_acts.begin() + static_cast<std::ptrdiff_t>(w),
                       win_acts.begin() + static_cast<std::ptrdiff_t>(w + W));
      }
    }
    st.order.resize(st.slots.size());
    std::iota(st.order.begin(), st.order.end(), 0);
    std::sort(st.order.begin(), st.order.end(),
              [&](std::int32_t x, std::int32_t y) { return slot_sampled_before(st.slots[x], st.slots[y]); });
    const auto kept =
        static_cast<std::int32_t>(std::min<std::size_t>(st.order.size(), static_cast<std::size_t>(M)));
    std::int32_t* h = &heap[static_cast<std::size_t>(j * S + K + to * M)];
    for (std::int32_t i = 0; i < kept; ++i) {
      const std::int64_t id = K + to * M + i;
      const auto src = static_cast<std::size_t>(st.order[static_cast<std::size_t>(i)]);
      slot(j, id) = st.slots[src];
      std::copy_n(st.tokens.begin() + static_cast<std::ptrdiff_t>(src * W), W,
                  win_tokens.begin() + static_cast<std::ptrdiff_t>(window(j, id)));
      std::copy_n(st.acts.begin() + static_cast<std::ptrdiff_t>(src * W), W,
                  win_acts.begin() + static_cast<std::ptrdiff_t>(window(j, id)));
      h[i] = static_cast<std::int32_t>(id);
    }
    std::make_heap(h, h + kept, [&](std::int32_t x, std::int32_t y) {
      return slot_sampled_before(slot(j, x), slot(j, y));
    });
    band_n[static_cast<std::size_t>(j * NB + to)] = kept;
  }

  // Doubles latent j's range until it holds v: each pair of bins becomes one.
  void grow_range(std::int64_t j, double v) {
    double& R = range[static_cast<std::size_t>(j)];
    if (R == 0) {
      R = pow2_at_least(v);
      return;
    }
    static thread_local Staging st;
    std::int64_t* hs = &hist[static_cast<std::size_t>(j * H)];
    std::int64_t* bc = &band_count[static_cast<std::size_t>(j * NB)];
    while (v > R) {
      R *= 2;
      for (std::int64_t i = 0; i < H / 2; ++i) hs[i] = hs[2 * i] + hs[2 * i + 1];
      std::fill(hs + H / 2, hs + H, 0);
      for (std::int64_t i = 0; i < NB / 2; ++i) {
        bc[i] = bc[2 * i] + bc[2 * i + 1];
        if (M > 0) merge_bands(j, i, 2 * i, 2 * i + 1, st);
      }
      std::fill(bc + NB / 2, bc + NB, 0);
      for (std::int64_t i = NB / 2; i < NB; ++i) band_n[static_cast<std::size_t>(j * NB + i)] = 0;
    }
  }

  void observe(const ScanChunk& c, const float* lat, std::int64_t j, std::int64_t r, float v) {
    const auto jj = static_cast<std::size_t>(j);
    ++count[jj];
    sum[jj] += v;
    max[jj] = std::max(max[jj], v);
    if (v > range[jj]) grow_range(j, v);
    ++hist[static_cast<std::size_t>(j * H + fine_bin(v, range[jj], H))];
    const std::int64_t b = fine_bin(v, range[jj], NB);
    ++band_count[static_cast<std::size_t>(j * NB + b)];
    const auto& q = c.sequences[static_cast<std::size_t>(c.row_sequence[static_cast<std::size_t>(r)])];
    Slot probe;
    probe.act = v;
    probe.seq = q.seq;
    probe.pos = q.start + c.row_offset[static_cast<std::size_t>(r)];
    std::int32_t& tn = top_n[jj];
    if (K > 0 && (tn < K || slot_ranks_before(probe, slot(j, heap[static_cast<std::size_t>(j * S)]))))
      insert(j, 0, K, tn, slot_ranks_before, c, lat, r, v, 0);
    if (M == 0) return;
    probe.priority = sample_priority(opts.seed, j, probe.seq, probe.pos);
    std::int32_t& bn = band_n[static_cast<std::size_t>(j * NB + b)];
    const std::int64_t base = K + b * M;
    if (bn == M && !slot_sampled_before(probe, slot(j, heap[static_cast<std::size_t>(j * S + base)]))) return;
    insert(j, base, M, bn, slot_sampled_before, c, lat, r, v, probe.priority);
  }

  FeatureExample example(std::int64_t j, std::int64_t id) const {
    const Slot& s = slot(j, id);
    FeatureExample e;
    e.act = s.act;
    e.seq = s.seq;
    e.pos = s.pos;
    e.priority = s.priority;
    e.start = s.start;
    const std::size_t w = window(j, id);
    e.tokens.assign(win_tokens.begin() + static_cast<std::ptrdiff_t>(w),
                    win_tokens.begin() + static_cast<std::ptrdiff_t>(w + s.len));
    e.acts.assign(win_acts.begin() + static_cast<std::ptrdiff_t>(w),
                  win_acts.begin() + static_cast<std::ptrdiff_t>(w + s.len));
    return e;
  }
};

FeatureCollector::FeatureCollector(std::int64_t d_sae, FeatureOptions opts)
    : impl_(std::make_unique<Impl>()) {
  SAELAB_CHECK(d_sae > 0, Error, "feature collector: d_sae is ", d_sae, "; it must be positive");
  SAELAB_CHECK(opts.histogram_bins >= 2 && opts.histogram_bins % 2 == 0, Error,
               "feature collector: histogram_bins is ", opts.histogram_bins, "; it must be even and >= 2");
  SAELAB_CHECK(opts.bands >= 1 && opts.top_k >= 0 && opts.band_samples >= 0 && opts.context_left >= 0 &&
                   opts.context_right >= 0,
               Error,
               "feature collector: bands must be >= 1 and top_k, band_samples and the context sizes >= 0");
  impl_->d_sae = d_sae;
  impl_->opts = opts;
  impl_->allocate();
}

FeatureCollector::~FeatureCollector() = default;

std::int64_t FeatureCollector::d_sae() const {
  return impl_->d_sae;
}
std::int64_t FeatureCollector::tokens() const {
  return impl_->tokens;
}
const FeatureOptions& FeatureCollector::options() const {
  return impl_->opts;
}

void FeatureCollector::add(const torch::Tensor& latents, const ScanChunk& chunk) {
  const std::int64_t n = chunk.rows(), d = impl_->d_sae;
  SAELAB_CHECK(latents.dim() == 2 && latents.size(0) == n && latents.size(1) == d, Error,
               "feature collector: latents have shape ", latents.sizes(), "; expected [", n, ", ", d, "]");
  const auto lat = latents.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = lat.data_ptr<float>();
  std::atomic<std::int64_t> bad{-1};
  // Latents are independent: each thread owns a range of them and walks the rows in order, so
  // the result is the same for any thread count.
  at::parallel_for(0, d, 64, [&](std::int64_t j0, std::int64_t j1) {
    for (std::int64_t r = 0; r < n; ++r) {
      const float* row = p + r * d;
      for (std::int64_t j = j0; j < j1; ++j) {
        const float v = row[j];
        if (v <= 0) continue;  // NaN falls through to the check
        if (!std::isfinite(v)) {
          std::int64_t none = -1;
          bad.compare_exchange_strong(none, r * d + j);
          continue;
        }
        impl_->observe(chunk, p, j, r, v);
      }
    }
  });
  if (bad.load() >= 0) {
    const std::int64_t r = bad.load() / d, j = bad.load() % d;
    const auto& q =
        chunk.sequences[static_cast<std::size_t>(chunk.row_sequence[static_cast<std::size_t>(r)])];
    throw Error(
        cat("feature collector: latent ", j, " is ", p[r * d + j], " at sequence ", q.seq, ", position ",
            q.start + chunk.row_offset[static_cast<std::size_t>(r)],
            "; the SAE produced a non-finite activation. Check the SAE's weights and the input scale."));
  }
  impl_->tokens += n;
}

FeatureStats FeatureCollector::stats(std::int64_t latent) const {
  const Impl& m = *impl_;
  SAELAB_CHECK(latent >= 0 && latent < m.d_sae, Error, "feature collector: latent ", latent,
               " does not exist (d_sae = ", m.d_sae, ")");
  const auto j = static_cast<std::size_t>(latent);
  FeatureStats f;
  f.count = m.count[j];
  f.sum = m.sum[j];
  f.max = m.max[j];
  f.range = m.range[j];
  for (std::int32_t i = 0; i < m.top_n[j]; ++i) f.top.push_back(m.example(latent, i));
  std::sort(f.top.begin(), f.top.end(), ranks_before);
  f.histogram.assign(m.hist.begin() + static_cast<std::ptrdiff_t>(j * m.H),
                     m.hist.begin() + static_cast<std::ptrdiff_t>((j + 1) * m.H));
  if (f.count == 0) return f;
  const std::int64_t last = fine_bin(f.max, f.range, m.NB);
  for (std::int64_t b = 0; b <= last; ++b) {
    FeatureBand band;
    band.lo = f.range * static_cast<double>(b) / static_cast<double>(m.NB);
    band.hi = f.range * static_cast<double>(b + 1) / static_cast<double>(m.NB);
    band.count = m.band_count[j * static_cast<std::size_t>(m.NB) + static_cast<std::size_t>(b)];
    const std::int32_t n = m.band_n[j * static_cast<std::size_t>(m.NB) + static_cast<std::size_t>(b)];
    for (std::int32_t i = 0; i < n; ++i) band.samples.push_back(m.example(latent, m.K + b * m.M + i));
    std::sort(band.samples.begin(), band.samples.end(), sampled_before);
    f.bands.push_back(std::move(band));
  }
  return f;
}

std::int64_t FeatureCollector::bytes() const {
  const Impl& m = *impl_;
  auto sz = [](const auto& v) { return static_cast<std::int64_t>(v.capacity() * sizeof(v[0])); };
  return sz(m.count) + sz(m.sum) + sz(m.range) + sz(m.max) + sz(m.hist) + sz(m.band_count) + sz(m.slots) +
         sz(m.win_tokens) + sz(m.win_acts) + sz(m.heap) + sz(m.top_n) + sz(m.band_n);
}

}  // namespace saelab
