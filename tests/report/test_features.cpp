// features/: the streaming collector equals a brute-force computation over every activation, for
// any chunking of the scan; the store scan regroups ordered rows into sequences; decoder
// neighbours equal a full cosine matrix; logit tables equal a direct matmul.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "fakes.hpp"
#include "saelab/data/memory_reader.hpp"
#include "saelab/features/collector.hpp"
#include "saelab/features/directions.hpp"
#include "saelab/features/scan.hpp"
#include "support/support.hpp"

using namespace saelab;

namespace {

// A planted scan: `seqs` sequences of `len` positions, position 0 not evaluated (BOS), latents
// with a few ties and a wide range of magnitudes so ranges grow many times.
struct Planted {
  std::int64_t seqs = 0, len = 0, d_sae = 0;
  std::vector<std::vector<std::int32_t>> tokens;  // [seq][pos]
  torch::Tensor latents;                          // [seqs, len, d_sae], position 0 unused
};

Planted planted(std::int64_t seqs, std::int64_t len, std::int64_t d_sae, std::uint64_t seed) {
  Planted p{seqs, len, d_sae, {}, {}};
  std::mt19937_64 rng(seed);
  for (std::int64_t s = 0; s < seqs; ++s) {
    std::vector<std::int32_t> t;
    for (std::int64_t i = 0; i < len; ++i) t.push_back(static_cast<std::int32_t>(rng() % 50));
    p.tokens.push_back(t);
  }
  torch::manual_seed(seed);
  auto raw = torch::randn({seqs, len, d_sae});
  auto scale = torch::pow(2.0, torch::arange(d_sae, torch::kFloat32) % 7 - 3);  // 1/8 .. 8
  auto lat = torch::relu(raw - 0.8) * scale * torch::exp(torch::randn({seqs, len, 1}));
  lat.index_put_({torch::indexing::Slice(), 3, 1}, 1.5f);  // ties across sequences for latent 1
  lat.select(2, d_sae - 1).zero_();                        // a dead latent
  p.latents = lat;
  return p;
}

// Chunks of `per_chunk` sequences; rows are the evaluated positions 1..len-1 of each.
std::vector<std::pair<ScanChunk, torch::Tensor>> chunks_of(const Planted& p, std::int64_t per_chunk) {
  std::vector<std::pair<ScanChunk, torch::Tensor>> out;
  for (std::int64_t s0 = 0; s0 < p.seqs; s0 += per_chunk) {
    ScanChunk c;
    std::vector<torch::Tensor> rows;
    std::int64_t row = 0;
    for (std::int64_t s = s0; s < std::min(p.seqs, s0 + per_chunk); ++s) {
      ScanSequence q;
      q.seq = 100 + s;
      q.tokens = p.tokens[static_cast<std::size_t>(s)];
      for (std::int64_t i = 0; i < p.len; ++i) q.rows.push_back(i == 0 ? -1 : row++);
      rows.push_back(p.latents[s].narrow(0, 1, p.len - 1));
      c.sequences.push_back(q);
    }
    const auto lat = torch::cat(rows, 0);
    c.x = torch::zeros({lat.size(0), 1});
    c.index_rows();
    out.emplace_back(std::move(c), lat);
  }
  return out;
}

FeatureExample brute_example(const Planted& p, const FeatureOptions& o, std::int64_t j, std::int64_t s,
                             std::int64_t pos) {
  FeatureExample e;
  e.act = p.latents[s][pos][j].item<float>();
  e.seq = 100 + s;
  e.pos = pos;
  e.start = std::max<std::int64_t>(0, pos - o.context_left);
  for (std::int64_t i = e.start; i < std::min(p.len, pos + o.context_right + 1); ++i) {
    e.tokens.push_back(p.tokens[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)]);
    e.acts.push_back(i == 0 ? NAN : p.latents[s][i][j].item<float>());
  }
  e.priority = sample_priority(o.seed, j, e.seq, pos);
  return e;
}

// Everything the collector should produce for latent j, computed from all activations at once.
FeatureStats brute_force(const Planted& p, const FeatureOptions& o, std::int64_t j) {
  FeatureStats f;
  std::vector<FeatureExample> all;
  for (std::int64_t s = 0; s < p.seqs; ++s)
    for (std::int64_t pos = 1; pos < p.len; ++pos) {
      const float v = p.latents[s][pos][j].item<float>();
      if (v <= 0) continue;
      ++f.count;
      f.sum += v;
      f.max = std::max(f.max, v);
      all.push_back(brute_example(p, o, j, s, pos));
    }
  f.histogram.assign(static_cast<std::size_t>(o.histogram_bins), 0);
  if (all.empty()) return f;
  f.range = pow2_at_least(f.max);
  const std::int64_t nb = 2 * o.bands;
  for (std::int64_t b = 0; b <= fine_bin(f.max, f.range, nb); ++b)
    f.bands.push_back({f.range * b / nb, f.range * (b + 1) / nb, 0, {}});
  for (const auto& e : all) {
    ++f.histogram[static_cast<std::size_t>(fine_bin(e.act, f.range, o.histogram_bins))];
    auto& band = f.bands[static_cast<std::size_t>(fine_bin(e.act, f.range, nb))];
    ++band.count;
    band.samples.push_back(e);
  }
  for (auto& b : f.bands) {
    std::sort(b.samples.begin(), b.samples.end(), sampled_before);
    if (b.samples.size() > static_cast<std::size_t>(o.band_samples)) b.samples.resize(o.band_samples);
  }
  std::sort(all.begin(), all.end(), ranks_before);
  if (all.size() > static_cast<std::size_t>(o.top_k)) all.resize(o.top_k);
  f.top = all;
  return f;
}

bool same_acts(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

void expect_same_example(const FeatureExample& a, const FeatureExample& b, const std::string& what) {
  EXPECT_EQ(a.act, b.act) << what;
  EXPECT_EQ(a.seq, b.seq) << what;
  EXPECT_EQ(a.pos, b.pos) << what;
  EXPECT_EQ(a.start, b.start) << what;
  EXPECT_EQ(a.tokens, b.tokens) << what;
  EXPECT_TRUE(same_acts(a.acts, b.acts)) << what;
}

void expect_same(const FeatureStats& got, const FeatureStats& want, std::int64_t j) {
  const std::string at = "latent " + std::to_string(j);
  ASSERT_EQ(got.count, want.count) << at;
  EXPECT_NEAR(got.sum, want.sum, 1e-9 * std::max(1.0, want.sum)) << at;
  EXPECT_EQ(got.max, want.max) << at;
  EXPECT_EQ(got.range, want.range) << at;
  EXPECT_EQ(got.histogram, want.histogram) << at;
  ASSERT_EQ(got.top.size(), want.top.size()) << at;
  for (std::size_t i = 0; i < got.top.size(); ++i) expect_same_example(got.top[i], want.top[i], at + " top");
  ASSERT_EQ(got.bands.size(), want.bands.size()) << at;
  for (std::size_t b = 0; b < got.bands.size(); ++b) {
    EXPECT_EQ(got.bands[b].lo, want.bands[b].lo) << at;
    EXPECT_EQ(got.bands[b].hi, want.bands[b].hi) << at;
    EXPECT_EQ(got.bands[b].count, want.bands[b].count) << at << " band " << b;
    ASSERT_EQ(got.bands[b].samples.size(), want.bands[b].samples.size()) << at << " band " << b;
    for (std::size_t i = 0; i < got.bands[b].samples.size(); ++i)
      expect_same_example(got.bands[b].samples[i], want.bands[b].samples[i], at + " band sample");
  }
}

FeatureOptions small_options() {
  FeatureOptions o;
  o.top_k = 7;
  o.bands = 3;
  o.band_samples = 2;
  o.histogram_bins = 10;
  o.context_left = 3;
  o.context_right = 2;
  o.seed = 42;
  return o;
}

}  // namespace

TEST(FeatureCollector, EqualsBruteForceForAnyChunking) {
  const auto p = planted(23, 12, 9, 5);
  const auto o = small_options();
  for (std::int64_t per_chunk : {1, 4, 23}) {
    FeatureCollector c(p.d_sae, o);
    for (const auto& [chunk, lat] : chunks_of(p, per_chunk)) c.add(lat, chunk);
    EXPECT_EQ(c.tokens(), 23 * 11);
    for (std::int64_t j = 0; j < p.d_sae; ++j) expect_same(c.stats(j), brute_force(p, o, j), j);
  }
  FeatureCollector c(p.d_sae, o);
  for (const auto& [chunk, lat] : chunks_of(p, 5)) c.add(lat, chunk);
  const auto dead = c.stats(p.d_sae - 1);
  EXPECT_EQ(dead.count, 0);
  EXPECT_TRUE(dead.top.empty() && dead.bands.empty());
  // Ties at position 3 of latent 1 (value 1.5 in every sequence) go to the earlier sequence.
  EXPECT_GT(c.stats(1).count, 0);
}

TEST(FeatureCollector, BinsMergeExactlyWhenTheRangeDoubles) {
  // Bin of v at range R halves (integer division) at 2R, for values spread over many octaves.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-20, 6);
  for (int i = 0; i < 20000; ++i) {
    const float v = static_cast<float>(std::exp2(u(rng)));
    const double r = pow2_at_least(v);
    EXPECT_GE(r, v);
    EXPECT_LT(r / 2, v);
    for (std::int64_t bins : {10, 40, 64})
      for (double k = r; k <= 64 * r; k *= 2)
        EXPECT_EQ(fine_bin(v, 2 * k, bins), fine_bin(v, k, bins) / 2) << v << " at " << k;
  }
}

TEST(FeatureCollector, RejectsNonFiniteLatentsNamingWhere) {
  const auto p = planted(2, 6, 3, 1);
  auto chunks = chunks_of(p, 2);
  auto lat = chunks[0].second.clone();
  lat[7][2] = NAN;  // row 7: second sequence (5 rows each), offset 3
  FeatureCollector c(3, small_options());
  const auto msg = test::error_of([&] { c.add(lat, chunks[0].first); });
  EXPECT_TRUE(test::contains(msg, "latent 2 is nan at sequence 101, position 3")) << msg;
  EXPECT_TRUE(test::contains(test::error_of([] {
                               FeatureCollector(4, FeatureOptions{20, 5, 5, 7});
                             }),
                             "histogram_bins is 7"));
}

TEST(StoreFeatureScan, RegroupsOrderedRowsIntoWholeSequences) {
  // Rows of sequences 5..9 with positions 1..6 (position 0 was not stored), read in batches of 4
  // so sequences straddle batches; max_tokens stops after the sequence that reaches it.
  const std::int64_t n = 5 * 6, d = 3;
  ActivationRows rows;
  rows.activations = torch::arange(n * d, torch::kFloat32).reshape({n, d});
  rows.sequence = torch::arange(n, torch::kInt64).div(6, "floor") + 5;
  rows.position = (torch::arange(n, torch::kInt64).remainder(6) + 1).to(torch::kInt32);
  rows.tokens = (torch::arange(n, torch::kInt64) * 7 % 50).to(torch::kInt32);
  ReaderOptions ro;
  ro.shuffle = false;
  ro.batch_rows = 4;
  TensorActivationReader reader(rows, ro);
  auto scan = store_feature_scan(reader, 14);  // 14 rows: 3 sequences (18 rows)
  ScanChunk c;
  std::vector<std::int64_t> seen;
  while (scan->next(c)) {
    ASSERT_EQ(c.rows(), c.x.size(0));
    for (std::size_t s = 0; s < c.sequences.size(); ++s) {
      const auto& q = c.sequences[s];
      seen.push_back(q.seq);
      EXPECT_EQ(q.start, 1);
      ASSERT_EQ(q.tokens.size(), 6u);
      for (std::int64_t i = 0; i < 6; ++i) {
        const std::int64_t global = (q.seq - 5) * 6 + i;
        EXPECT_EQ(q.tokens[static_cast<std::size_t>(i)], global * 7 % 50);
        EXPECT_EQ(c.x[q.rows[static_cast<std::size_t>(i)]][0].item<float>(), global * d);
      }
    }
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{5, 6, 7}));
  EXPECT_EQ(scan->rows_done(), 18);

  // Shuffled rows are refused with what to do.
  ro.shuffle = true;
  TensorActivationReader shuffled(rows, ro);
  auto bad = store_feature_scan(shuffled, 100);
  const auto msg = test::error_of([&] {
    while (bad->next(c)) {
    }
  });
  EXPECT_TRUE(test::contains(msg, "needs rows sorted by (sequence, position)")) << msg;
}

TEST(DecoderNeighbours, EqualFullCosineMatrix) {
  torch::manual_seed(9);
  const auto w = torch::randn({70, 16});
  const auto got = decoder_neighbours(w, 5, 16);  // blocks of 16 rows
  const auto unit = w / w.norm(2, 1, true);
  const auto cos = unit.mm(unit.t()).to(torch::kFloat64);
  double max_diff = 0;
  for (std::int64_t f = 0; f < 70; ++f) {
    std::vector<std::pair<double, std::int64_t>> all;
    for (std::int64_t g = 0; g < 70; ++g)
      if (g != f) all.push_back({cos[f][g].item<double>(), g});
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
    ASSERT_EQ(got[static_cast<std::size_t>(f)].size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(got[static_cast<std::size_t>(f)][i].id, all[i].second) << "latent " << f << " rank " << i;
      max_diff = std::max(max_diff, std::abs(got[static_cast<std::size_t>(f)][i].cos - all[i].first));
    }
  }
  std::printf("decoder neighbours: max |cos - reference| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-5);
}

TEST(LogitTables, EqualDirectMatmul) {
  test::FakeSource src(6);
  torch::manual_seed(4);
  const auto w_dec = torch::randn({37, 6});
  const double scale = 2.0;
  const auto t = logit_tables(src, test::kResidHook, w_dec, scale, 3, 8);  // blocks of 8 latents
  ASSERT_TRUE(t.available);
  const auto ref = (w_dec / scale).mm(src.weights().at("U"));  // [37, vocab]
  double max_diff = 0;
  for (std::int64_t f = 0; f < 37; ++f) {
    auto [tv, ti] = ref[f].topk(3);
    auto [bv, bi] = ref[f].topk(3, 0, false);
    for (std::int64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(t.latents[f].top[i].token, ti[i].item<std::int64_t>());
      EXPECT_EQ(t.latents[f].bottom[i].token, bi[i].item<std::int64_t>());
      max_diff = std::max({max_diff, std::abs(t.latents[f].top[i].value - tv[i].item<double>()),
                           std::abs(t.latents[f].bottom[i].value - bv[i].item<double>())});
    }
  }
  std::printf("logit tables: max |effect - W_dec/s . U| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-5);
  const auto none = logit_tables(src, test::kAttnHook, w_dec, 1.0, 3);
  EXPECT_FALSE(none.available);
  EXPECT_TRUE(test::contains(none.reason, "not in the residual stream")) << none.reason;
}
