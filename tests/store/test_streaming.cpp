// MixingBuffer and StreamingReader: every produced row comes out exactly once, values survive the
// storage dtype as torch would round them, order is a function of the seed, and the weak cursor
// keeps its promises (resume point, no row emitted twice).
#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "saelab/data/mixing_buffer.hpp"
#include "saelab/data/streaming_reader.hpp"
#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;

namespace {

// Produces synthetic sequences [next, end) a few at a time; remembers what it handed out.
struct Producer {
  std::int64_t next = 0;
  std::int64_t end = 0;
  std::int64_t d = 8;
  std::int64_t produced_rows = 0;
  std::optional<ActivationRows> operator()() {
    if (next >= end) return std::nullopt;
    const std::int64_t stop = std::min(end, next + 3);
    ActivationRows r = synth_rows(next, stop, d);
    produced_rows += r.activations.size(0);
    next = stop;
    return r;
  }
};

using RowKey = std::pair<std::int64_t, std::int32_t>;  // (sequence, position)

std::vector<RowKey> keys(const ActivationRows& r) {
  std::vector<RowKey> k;
  for (std::int64_t i = 0; i < r.sequence.size(0); ++i)
    k.emplace_back(r.sequence[i].item<std::int64_t>(), r.position[i].item<std::int32_t>());
  return k;
}

// Rows must hold synthetic values (rounded to `dtype`) for their (sequence, position).
double max_value_error(const ActivationRows& r, RowDtype dtype) {
  const std::int64_t n = r.activations.size(0), d = r.activations.size(1);
  torch::Tensor want = torch::empty({n, d});
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < d; ++c)
      want[i][c] = synth_value(r.sequence[i].item<std::int64_t>(), r.position[i].item<std::int32_t>(), c);
  return (rounded(want, dtype) - r.activations).abs().max().item<double>();
}

StreamingReaderOptions stream_opts(std::uint64_t seed, std::int64_t buffer, std::int64_t batch) {
  StreamingReaderOptions o;
  o.reader.seed = seed;
  o.reader.buffer_rows = buffer;
  o.reader.batch_rows = batch;
  return o;
}

}  // namespace

TEST(MixingBuffer, ShuffledTakeReturnsEveryRowOnceWithValuesIntact) {
  const std::int64_t d = 8;
  ActivationRows rows = synth_rows(0, 30, d);
  const std::int64_t n = rows.activations.size(0);
  MixingBuffer buf(n, d, RowDtype::Float16);
  buf.append(rows, 0, n);
  buf.shuffle(42);
  ActivationRows out;
  out.activations = torch::empty({n, d});
  out.tokens = torch::empty({n}, torch::kInt);
  out.sequence = torch::empty({n}, torch::kLong);
  out.position = torch::empty({n}, torch::kInt);
  buf.take(n, out.activations.data_ptr<float>(), out.tokens.data_ptr<std::int32_t>(),
           out.sequence.data_ptr<std::int64_t>(), out.position.data_ptr<std::int32_t>());
  auto got = keys(out), want = keys(rows);
  EXPECT_NE(got, want) << "shuffle left the order unchanged";
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  const double err = max_value_error(out, RowDtype::Float16);
  std::printf("mixing buffer float16 round trip: max |diff| vs torch-rounded = %g over %lld rows\n", err,
              static_cast<long long>(n));
  EXPECT_EQ(err, 0.0);
  EXPECT_EQ(buf.size(), 0);
}

TEST(MixingBuffer, RecycledSlotsRefillAndSeedFixesOrder) {
  const std::int64_t d = 4;
  auto run = [&](std::uint64_t seed) {
    MixingBuffer buf(40, d, RowDtype::Float32);
    ActivationRows rows = synth_rows(0, 20, d);
    const std::int64_t n = rows.activations.size(0);
    std::vector<std::int64_t> seqs;
    std::int64_t fed = 0;
    std::vector<std::int64_t> s(40);
    std::vector<float> a(40 * d);
    while (fed < n || buf.size() > 0) {
      const std::int64_t k = std::min(buf.free_rows(), n - fed);
      buf.append(rows, fed, fed + k);
      fed += k;
      buf.shuffle(seed + fed);
      const std::int64_t t = std::min<std::int64_t>(buf.size(), 15);
      buf.take(t, a.data(), nullptr, s.data(), nullptr);
      seqs.insert(seqs.end(), s.begin(), s.begin() + t);
    }
    return seqs;
  };
  auto a = run(1), b = run(1), c = run(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(static_cast<std::int64_t>(a.size()), synth_row_count(0, 20));
}

TEST(StreamingReader, EmitsEveryProducedRowOnceDeterministically) {
  const std::int64_t d = 8, nseq = 60;
  auto collect = [&](std::uint64_t seed, bool shuffle) {
    Producer p{0, nseq, d};
    auto o = stream_opts(seed, 64, 16);
    o.reader.shuffle = shuffle;
    o.storage = RowDtype::BFloat16;
    StreamingReader r(d, std::ref(p), o);
    std::vector<RowKey> all;
    double err = 0;
    for (;;) {
      ActivationRows b;
      try {
        b = r.next_rows();
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("exhausted"), std::string::npos) << e.what();
        break;
      }
      err = std::max(err, max_value_error(b, RowDtype::BFloat16));
      auto k = keys(b);
      all.insert(all.end(), k.begin(), k.end());
    }
    EXPECT_EQ(err, 0.0);
    return all;
  };
  auto a = collect(5, true), b = collect(5, true), c = collect(6, true), plain = collect(5, false);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(plain, keys(synth_rows(0, nseq, d))) << "shuffle=false must keep production order";
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, plain);
  std::printf("streaming reader: %zu rows, each exactly once\n", a.size());
}

TEST(StreamingReader, RestoreSkipsBufferedRowsButNeverRepeats) {
  const std::int64_t d = 8, nseq = 80;
  Producer p{0, nseq, d};
  StreamingReader r(d, std::ref(p), stream_opts(3, 64, 16));
  std::set<RowKey> seen;
  for (int i = 0; i < 6; ++i)
    for (auto k : keys(r.next_rows())) seen.insert(k);
  const nlohmann::json cur = r.cursor();
  EXPECT_EQ(cur["rows_emitted"], 96);
  const std::int64_t restart = StreamingReader::resume_sequence(cur);
  // Everything emitted so far belongs to sequences before the restart point.
  for (const auto& k : seen) EXPECT_LT(k.first, restart);

  Producer p2{restart, nseq, d};
  StreamingReader r2(d, std::ref(p2), stream_opts(3, 64, 16));
  r2.restore(cur);
  std::int64_t after = 0;
  try {
    for (;;) {
      for (auto k : keys(r2.next_rows())) {
        EXPECT_TRUE(seen.insert(k).second) << "row (" << k.first << ", " << k.second << ") emitted twice";
        ++after;
      }
    }
  } catch (const Error&) {
  }
  const std::int64_t skipped = synth_row_count(0, nseq) - static_cast<std::int64_t>(seen.size());
  std::printf("streaming restore: %lld rows after restore, %lld skipped (bound: buffer 64 + one answer)\n",
              static_cast<long long>(after), static_cast<long long>(skipped));
  EXPECT_LE(skipped, 64 + 3 * 15);
  EXPECT_EQ(r2.cursor()["rows_emitted"], 96 + after);

  nlohmann::json wrong = cur;
  wrong["seed"] = 4;
  try {
    r2.restore(wrong);
    FAIL() << "cursor with another seed accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("seed"), std::string::npos) << e.what();
  }
}

TEST(StreamingReader, RejectsMisshapenProducerOutput) {
  auto bad = []() -> std::optional<ActivationRows> {
    ActivationRows r;
    r.activations = torch::zeros({4, 5});
    return r;
  };
  StreamingReader r(8, bad, stream_opts(0, 16, 4));
  try {
    r.next_batch();
    FAIL() << "accepted [4, 5] rows for d = 8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 5]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[n, 8]"), std::string::npos) << e.what();
  }
}
