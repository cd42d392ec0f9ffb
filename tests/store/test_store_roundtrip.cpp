// Writing and reading back a store: values, provenance, shard boundaries, statistics, and the
// writer's refusals (overwrite, mismatched resume, out-of-order or split sequences).
#include <cmath>

#include <gtest/gtest.h>

#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;
namespace fs = std::filesystem;

namespace {

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "message lacks '" << part << "':\n  " << text;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return "";
}

}  // namespace

class StoreRoundTrip : public ::testing::TestWithParam<RowDtype> {};

TEST_P(StoreRoundTrip, RowsProvenanceShardsAndStats) {
  const RowDtype dtype = GetParam();
  const std::int64_t d = 12, nseq = 70, shard_rows = 100;
  TempDir dir(cat("roundtrip-", row_dtype_name(dtype)));
  const NormStats st = harvest(dir.path(), test_config(dtype, shard_rows, 32), d, nseq, 4, false);

  const ActivationRows want = synth_rows(0, nseq, d);
  const ActivationRows got = read_all(dir.path());
  ASSERT_EQ(got.activations.sizes(), want.activations.sizes());
  const double err = (got.activations - rounded(want.activations, dtype)).abs().max().item<double>();
  const double vs_f32 = (got.activations - want.activations).abs().max().item<double>();
  std::printf("%s round trip: max |diff| vs torch-rounded %g, vs float32 %g (%lld rows)\n",
              row_dtype_name(dtype), err, vs_f32, static_cast<long long>(want.activations.size(0)));
  EXPECT_EQ(err, 0.0);
  EXPECT_TRUE(got.tokens.equal(want.tokens));
  EXPECT_TRUE(got.sequence.equal(want.sequence));
  EXPECT_TRUE(got.position.equal(want.position));

  // Shards: contiguous, cut at sequence boundaries, at least shard_rows rows except the last.
  const auto m = hdf5_store::read_manifest(dir.path());
  ASSERT_GE(m.shards.size(), 3u);
  std::int64_t next_seq = 0, rows = 0;
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    const auto& s = m.shards[i];
    EXPECT_EQ(s.first_sequence, next_seq);
    EXPECT_EQ(s.rows, synth_row_count(s.first_sequence, s.end_sequence)) << s.file;
    if (i + 1 < m.shards.size()) {
      EXPECT_GE(s.rows, shard_rows) << s.file;
      EXPECT_LT(s.rows - rows_of_sequence(s.end_sequence - 1), shard_rows) << s.file << " cut late";
    }
    next_seq = s.end_sequence;
    rows += s.rows;
  }
  EXPECT_EQ(next_seq, nseq);
  EXPECT_EQ(rows, want.activations.size(0));
  EXPECT_TRUE(m.complete);

  // Statistics against a plain double computation over the float32 rows as appended.
  const torch::Tensor x = want.activations.to(torch::kDouble);
  const double mean_norm = x.norm(2, 1).mean().item<double>();
  const torch::Tensor mean = x.mean(0);
  double mean_err = 0;
  for (std::int64_t c = 0; c < d; ++c)
    mean_err = std::max(mean_err, std::abs(st.mean[static_cast<std::size_t>(c)] - mean[c].item<double>()));
  std::printf("stats: mean_norm %.12f (reference %.12f), max |mean diff| %g\n", st.mean_norm, mean_norm,
              mean_err);
  EXPECT_EQ(st.rows, want.activations.size(0));
  EXPECT_NEAR(st.mean_norm, mean_norm, 1e-12 * mean_norm);
  EXPECT_LT(mean_err, 1e-12);
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  const auto recorded = store.stats(dir.path());
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(recorded->mean_norm, st.mean_norm);
  EXPECT_EQ(recorded->mean, st.mean);
  EXPECT_EQ(store.meta(dir.path()).dtype, row_dtype_name(dtype));
  const auto info = store.info(dir.path(), true);
  EXPECT_TRUE(info["ok"].get<bool>()) << info.dump(1);
  EXPECT_EQ(info["rows"], rows);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, StoreRoundTrip,
                         ::testing::Values(RowDtype::Float32, RowDtype::Float16, RowDtype::BFloat16),
                         [](const auto& p) { return std::string(row_dtype_name(p.param)); });

TEST(StoreWriter, CommitEndsAShardAndSequencesMayNotStraddleIt) {
  TempDir dir("commit");
  const std::int64_t d = 6;
  auto w =
      hdf5_store::open_hdf5_writer(dir.path(), test_meta(d), false, test_config(RowDtype::Float16, 1000, 16));
  w->append(synth_rows(0, 3, d));
  EXPECT_EQ(w->committed_rows(), 0);
  w->commit();
  EXPECT_EQ(w->committed_rows(), synth_row_count(0, 3));
  EXPECT_EQ(w->committed_sequences(), 3);
  // Sequence 2 was committed: more of its rows would split it across shards.
  const std::string msg = error_of([&] { w->append(synth_rows(2, 4, d)); });
  expect_contains(msg, "sequence 2 is already committed");
  expect_contains(msg, "committed_sequences()");
  const std::string order = error_of([&] {
    ActivationRows r = synth_rows(5, 7, d);
    r.sequence = r.sequence.flip(0);
    w->append(r);
  });
  expect_contains(order, "corpus order");
  w->append(synth_rows(3, 5, d));  // a rejected append leaves the writer usable
  w->finish();
  EXPECT_EQ(hdf5_store::read_manifest(dir.path()).shards.size(), 2u);
  EXPECT_TRUE(read_all(dir.path()).sequence.equal(synth_rows(0, 5, d).sequence));
}

TEST(StoreWriter, RefusesToOverwriteOrToResumeADifferentHarvest) {
  TempDir dir("refuse");
  const std::int64_t d = 6;
  const auto cfg = test_config(RowDtype::Float16, 50, 16);
  {
    auto w = hdf5_store::open_hdf5_writer(dir.path(), test_meta(d), false, cfg);
    w->append(synth_rows(0, 12, d));
    w->commit();
  }
  expect_contains(error_of([&] { hdf5_store::open_hdf5_writer(dir.path(), test_meta(d), false, cfg); }),
                  "refusing to overwrite");
  const std::string hook = error_of(
      [&] { hdf5_store::open_hdf5_writer(dir.path(), test_meta(d, "blocks.5.hook_resid_pre"), true, cfg); });
  expect_contains(hook, "hook is 'blocks.5.hook_resid_pre' but the store has 'blocks.0.hook_resid_pre'");
  expect_contains(error_of([&] {
                    hdf5_store::open_hdf5_writer(dir.path(), test_meta(d), true,
                                                 test_config(RowDtype::BFloat16, 50, 16));
                  }),
                  "dtype is 'bfloat16' but the store has 'float16'");
  expect_contains(error_of([&] {
                    hdf5_store::open_hdf5_writer(dir.path(), test_meta(d), true,
                                                 test_config(RowDtype::Float16, 60, 16));
                  }),
                  "shard_rows=50");
  harvest(dir.path(), cfg, d, 20, 3, true);
  expect_contains(error_of([&] { hdf5_store::open_hdf5_writer(dir.path(), test_meta(d), true, cfg); }),
                  "already complete");

  TempDir other("not-a-store");
  write_bytes(other / "notes.txt", "hello");
  const std::string foreign =
      error_of([&] { hdf5_store::open_hdf5_writer(other.path(), test_meta(d), true, cfg); });
  expect_contains(foreign, other.path().string());
  expect_contains(foreign, "not an activation store");
}

TEST(StoreReader, RejectsOptionsThatCannotWork) {
  TempDir dir("reader-opts");
  harvest(dir.path(), test_config(RowDtype::Float16, 50, 32), 4, 10, 3, false);
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  ReaderOptions o;
  o.buffer_rows = 16;
  expect_contains(error_of([&] { store.open_reader(dir.path(), o); }),
                  "buffer_rows = 16 is smaller than the store's chunk_rows = 32");
  TempDir empty("reader-empty");
  hdf5_store::open_hdf5_writer(empty.path(), test_meta(4), false, test_config(RowDtype::Float16, 50, 32));
  expect_contains(error_of([&] { store.open_reader(empty.path(), ReaderOptions{}); }), "no committed rows");
}
