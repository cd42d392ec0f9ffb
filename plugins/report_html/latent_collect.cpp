#include "latent_collect.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "saelab/core/error.hpp"

namespace saelab::report {

bool ranks_before(const Example& a, const Example& b) {
  if (a.act != b.act) return a.act > b.act;
  if (a.seq != b.seq) return a.seq < b.seq;
  return a.pos < b.pos;
}

bool TopK::accepts(float act, std::int64_t seq, std::int64_t pos) const {
  if (k_ == 0) return false;
  if (heap_.size() < k_) return true;
  Example probe;
  probe.act = act;
  probe.seq = seq;
  probe.pos = pos;
  return ranks_before(probe, heap_.front());
}

void TopK::push(Example e) {
  // With ranks_before as "less", std heaps keep the element that ranks last at the front.
  if (heap_.size() == k_) {
    std::pop_heap(heap_.begin(), heap_.end(), ranks_before);
    heap_.back() = std::move(e);
  } else {
    heap_.push_back(std::move(e));
  }
  std::push_heap(heap_.begin(), heap_.end(), ranks_before);
}

std::vector<Example> TopK::sorted() const {
  auto v = heap_;
  std::sort(v.begin(), v.end(), ranks_before);
  return v;
}

LatentExamples::LatentExamples(std::int64_t latent_, float max_act_, const CollectOptions& opts)
    : latent(latent_),
      max_act(max_act_),
      top(static_cast<std::size_t>(opts.top_k)),
      histogram(static_cast<std::size_t>(opts.histogram_bins), 0),
      rng(opts.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(latent_)) {
  for (std::int64_t i = 0; i < opts.bands; ++i) {
    Band b;
    b.lo = double(max_act) * double(i) / double(opts.bands);
    b.hi = double(max_act) * double(i + 1) / double(opts.bands);
    bands.push_back(std::move(b));
  }
}

std::int64_t bin_of(double v, double max, std::int64_t n) {
  if (!(max > 0)) return 0;
  auto i = static_cast<std::int64_t>(std::floor(v / max * double(n)));
  // The top edge belongs to the last bin; values at the bottom edge of a bin (v == lo) belong to
  // the bin below, as intervals are (lo, hi].
  if (i > 0 && v <= max * double(i) / double(n)) --i;
  return std::clamp<std::int64_t>(i, 0, n - 1);
}

namespace {

// Fills e.window with column j of the batch around row `row` (rows are whole sequences).
void fill_window(Example& e, const float* lat, std::int64_t n_lat, std::int64_t j, std::int64_t row,
                 const ScanBatch& batch, const bool* include, const CollectOptions& opts) {
  if (batch.seq_len <= 0) return;
  const std::int64_t s = batch.seq_len;
  const std::int64_t p = row % s, base = row - p;
  const std::int64_t lo = std::max<std::int64_t>(0, p - opts.context_left);
  const std::int64_t hi = std::min<std::int64_t>(s - 1, p + opts.context_right);
  e.window_start = lo;
  e.window.resize(static_cast<std::size_t>(hi - lo + 1));
  for (std::int64_t q = lo; q <= hi; ++q) {
    const std::int64_t r = base + q;
    e.window[static_cast<std::size_t>(q - lo)] =
        include[r] ? lat[r * n_lat + j] : std::numeric_limits<float>::quiet_NaN();
  }
}

}  // namespace

void collect_batch(std::vector<LatentExamples>& latents, const torch::Tensor& lat_in, const ScanBatch& batch,
                   const CollectOptions& opts) {
  const auto lat = lat_in.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto seq = batch.seq.contiguous(), pos = batch.pos.contiguous();
  const auto include = batch.include.to(torch::kCPU).contiguous();
  const std::int64_t rows = lat.size(0), n_lat = lat.size(1);
  SAELAB_CHECK(n_lat == static_cast<std::int64_t>(latents.size()), Error, "report: collect_batch got ", n_lat,
               " columns for ", latents.size(), " latents");
  const float* a = lat.data_ptr<float>();
  const auto* sq = seq.data_ptr<std::int64_t>();
  const auto* ps = pos.data_ptr<std::int64_t>();
  const bool* inc = include.data_ptr<bool>();
  for (std::int64_t r = 0; r < rows; ++r) {
    if (!inc[r]) continue;
    for (std::int64_t j = 0; j < n_lat; ++j) {
      const float v = a[r * n_lat + j];
      if (v == 0.0f || std::isnan(v)) continue;
      auto& L = latents[static_cast<std::size_t>(j)];
      ++L.nonzero;
      if (v > 0) {
        ++L.histogram[static_cast<std::size_t>(bin_of(v, L.max_act, opts.histogram_bins))];
        auto& band = L.bands[static_cast<std::size_t>(bin_of(v, L.max_act, opts.bands))];
        ++band.count;
        // Reservoir sampling (algorithm R): keeps a uniform sample of the band's activations.
        std::int64_t slot = -1;
        if (static_cast<std::int64_t>(band.samples.size()) < opts.band_samples) {
          slot = static_cast<std::int64_t>(band.samples.size());
          band.samples.emplace_back();
        } else if (opts.band_samples > 0) {
          const auto k = static_cast<std::int64_t>(L.rng() % static_cast<std::uint64_t>(band.count));
          if (k < opts.band_samples) slot = k;
        }
        if (slot >= 0) {
          Example e{v, sq[r], ps[r], 0, {}};
          fill_window(e, a, n_lat, j, r, batch, inc, opts);
          band.samples[static_cast<std::size_t>(slot)] = std::move(e);
        }
      }
      if (L.top.accepts(v, sq[r], ps[r])) {
        Example e{v, sq[r], ps[r], 0, {}};
        fill_window(e, a, n_lat, j, r, batch, inc, opts);
        L.top.push(std::move(e));
      }
    }
  }
}

Selection parse_selection(const std::string& s) {
  if (s == "most_active") return Selection::MostActive;
  if (s == "max_activation") return Selection::MaxActivation;
  if (s == "random") return Selection::Random;
  if (s == "list") return Selection::List;
  throw ConfigError(
      cat("report: unknown latent selection '", s, "'; allowed: most_active, max_activation, random, list"));
}

std::vector<std::int64_t> select_latents(Selection how, const torch::Tensor& counts_t,
                                         const torch::Tensor& max_t, std::int64_t n,
                                         const std::vector<std::int64_t>& list, std::uint64_t seed) {
  if (how == Selection::List) {
    std::vector<std::int64_t> out;
    for (auto i : list)
      if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
    return out;
  }
  const auto counts = counts_t.contiguous();
  const auto maxv = max_t.to(torch::kFloat32).contiguous();
  const auto* c = counts.data_ptr<std::int64_t>();
  const auto* m = maxv.data_ptr<float>();
  std::vector<std::int64_t> alive;
  for (std::int64_t i = 0; i < counts.size(0); ++i)
    if (c[i] > 0) alive.push_back(i);
  const auto take = static_cast<std::size_t>(std::min<std::int64_t>(n, alive.size()));
  if (how == Selection::Random) {
    std::mt19937_64 rng(seed);
    // Partial Fisher-Yates: the first `take` entries become a uniform sample.
    for (std::size_t i = 0; i < take; ++i) {
      const auto k = i + static_cast<std::size_t>(rng() % (alive.size() - i));
      std::swap(alive[i], alive[k]);
    }
    alive.resize(take);
    std::sort(alive.begin(), alive.end());
    return alive;
  }
  auto key = [&](std::int64_t i) { return how == Selection::MostActive ? double(c[i]) : double(m[i]); };
  std::partial_sort(
      alive.begin(), alive.begin() + static_cast<std::ptrdiff_t>(take), alive.end(),
      [&](std::int64_t a, std::int64_t b) { return key(a) != key(b) ? key(a) > key(b) : a < b; });
  alive.resize(take);
  return alive;
}

}  // namespace saelab::report
