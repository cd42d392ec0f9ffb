// The shuffling reader: determinism per seed, each row exactly once per epoch, and cursors that
// reproduce the original batches exactly (mid-window, at window ends, across epochs).
#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "saelab/data/memory_reader.hpp"
#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;

namespace {

constexpr std::int64_t kD = 6;
constexpr std::int64_t kSeqs = 90;  // 897 rows in 32-row chunks, 4 shards of >= 250 rows

const std::filesystem::path& shared_store() {
  static TempDir dir("reader");
  static bool made = false;
  if (!made) {
    harvest(dir.path(), test_config(RowDtype::Float16, 250, 32), kD, kSeqs, 5, false);
    made = true;
  }
  return dir.path();
}

std::unique_ptr<ActivationReader> reader(std::uint64_t seed, std::int64_t batch = 100,
                                         std::int64_t buffer = 200) {
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  ReaderOptions o;
  o.seed = seed;
  o.batch_rows = batch;
  o.buffer_rows = buffer;
  return store.open_reader(shared_store(), o);
}

using Key = std::pair<std::int64_t, std::int32_t>;

std::vector<Key> batch_keys(ActivationReader& r) {
  ActivationRows b = r.next_rows();
  std::vector<Key> k;
  for (std::int64_t i = 0; i < b.sequence.size(0); ++i)
    k.emplace_back(b.sequence[i].item<std::int64_t>(), b.position[i].item<std::int32_t>());
  return k;
}

}  // namespace

TEST(StoreReader, SameSeedSameBatchesOtherSeedOtherBatches) {
  auto a = reader(11), b = reader(11), c = reader(12);
  int differ = 0;
  for (int i = 0; i < 20; ++i) {
    const torch::Tensor x = a->next_batch(), y = b->next_batch(), z = c->next_batch();
    ASSERT_EQ(x.sizes(), (std::vector<std::int64_t>{100, kD}));
    EXPECT_TRUE(x.equal(y)) << "batch " << i;
    differ += !x.equal(z);
  }
  EXPECT_EQ(differ, 20);
}

TEST(StoreReader, EveryRowExactlyOncePerEpochAndBatchesAreMixed) {
  auto r = reader(3, 70, 200);  // 70 does not divide 892: batches straddle epochs
  const std::int64_t per_epoch = r->rows_per_epoch();
  ASSERT_EQ(per_epoch, synth_row_count(0, kSeqs));
  std::vector<Key> stream;
  while (static_cast<std::int64_t>(stream.size()) < 3 * per_epoch) {
    auto k = batch_keys(*r);
    stream.insert(stream.end(), k.begin(), k.end());
  }
  auto all = batch_keys(*reader(0, per_epoch, 1 << 12));  // one full epoch, any order
  std::sort(all.begin(), all.end());
  ASSERT_EQ(static_cast<std::int64_t>(all.size()), per_epoch);
  std::vector<std::vector<Key>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<Key> ep(stream.begin() + e * per_epoch, stream.begin() + (e + 1) * per_epoch);
    epochs.push_back(ep);
    std::sort(ep.begin(), ep.end());
    EXPECT_EQ(ep, all) << "epoch " << e << " is not a permutation of the store's rows";
  }
  EXPECT_NE(epochs[0], epochs[1]) << "epochs must be permuted differently";
  // A batch of 70 drawn from a 200-row window spans many sequences, not a run of neighbours.
  std::map<std::int64_t, int> seqs;
  for (int i = 0; i < 70; ++i) seqs[stream[static_cast<std::size_t>(i)].first]++;
  std::printf("reader: %lld rows/epoch, first batch spans %zu sequences\n", static_cast<long long>(per_epoch),
              seqs.size());
  EXPECT_GT(seqs.size(), 15u);
}

TEST(StoreReader, RestoredCursorContinuesWithTheOriginalBatches) {
  // Checkpoint after k batches; k = 13 and 25 land past the first epoch (897 rows / 70).
  for (int k : {0, 1, 3, 12, 13, 25}) {
    auto original = reader(21, 70, 200);
    for (int i = 0; i < k; ++i) original->next_batch();
    const nlohmann::json cur = original->cursor();
    auto restored = reader(21, 70, 200);
    restored->next_batch();  // a reader that has moved elsewhere before restoring
    restored->restore(nlohmann::json::parse(cur.dump()));
    for (int i = 0; i < 16; ++i) {
      ActivationRows a = original->next_rows(), b = restored->next_rows();
      ASSERT_TRUE(a.activations.equal(b.activations)) << "checkpoint after " << k << " batches, batch " << i;
      ASSERT_TRUE(a.sequence.equal(b.sequence) && a.position.equal(b.position));
    }
    EXPECT_EQ(original->cursor(), restored->cursor());
  }
  // The row stream does not depend on the batch size: a cursor restores into another batch_rows.
  auto a = reader(21, 70, 200);
  for (int i = 0; i < 5; ++i) a->next_batch();
  auto b = reader(21, 35, 200);
  b->restore(a->cursor());
  const torch::Tensor x = a->next_batch();
  const torch::Tensor y = torch::cat({b->next_batch(), b->next_batch()});
  EXPECT_TRUE(x.equal(y));
}

TEST(StoreReader, PartsOfABatchAreItsSlicesAndTheStreamMovesByWholeBatches) {
  // A data-parallel rank's read: 3 readers each take one third of every 90-row batch (batches
  // straddle windows and epochs), and together they give the whole reader's batches, with the
  // provenance, and end at its cursor. The in-memory reader too.
  auto whole = reader(17, 90, 200);
  std::vector<std::unique_ptr<ActivationReader>> ranks;
  for (int r = 0; r < 3; ++r) ranks.push_back(reader(17, 90, 200));
  for (int i = 0; i < 25; ++i) {
    const ActivationRows all = whole->next_rows();
    for (int r = 0; r < 3; ++r) {
      const ActivationRows part = ranks[r]->next_part(r, 3, /*with_provenance=*/i % 2 == 0);
      ASSERT_EQ(part.activations.sizes(), (std::vector<std::int64_t>{30, kD}));
      ASSERT_TRUE(part.activations.equal(all.activations.narrow(0, 30 * r, 30)))
          << "batch " << i << " part " << r;
      if (i % 2 == 0)
        ASSERT_TRUE(part.sequence.equal(all.sequence.narrow(0, 30 * r, 30)) &&
                    part.position.equal(all.position.narrow(0, 30 * r, 30)) &&
                    part.tokens.equal(all.tokens.narrow(0, 30 * r, 30)));
      else
        EXPECT_FALSE(part.sequence.defined());
    }
  }
  for (const auto& r : ranks) EXPECT_EQ(r->cursor(), whole->cursor());
  const std::string msg = test::error_of([&] { ranks[0]->next_part(0, 4, false); });
  std::printf("  error: %s\n", msg.c_str());
  EXPECT_NE(msg.find("reading part 0 of 4 of a batch of 90 rows; parts must divide the batch"),
            std::string::npos)
      << msg;

  const torch::Tensor rows = torch::randn({77, 4});
  TensorActivationReader mem(rows, ReaderOptions{5, 1 << 19, 20}),
      mem_part(rows, ReaderOptions{5, 1 << 19, 20});
  for (int i = 0; i < 9; ++i)  // 20-row batches straddle the 77-row epochs
    ASSERT_TRUE(mem_part.next_part(1, 2, false).activations.equal(mem.next_batch().narrow(0, 10, 10))) << i;
  EXPECT_EQ(mem_part.cursor(), mem.cursor());
}

TEST(StoreReader, CursorFromOtherSettingsIsRefusedWithTheReason) {
  auto a = reader(21, 70, 200);
  a->next_batch();
  auto check = [&](std::unique_ptr<ActivationReader> r, const std::string& key) {
    try {
      r->restore(a->cursor());
      FAIL() << "cursor restored despite different " << key;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  check(reader(22, 70, 200), "seed = 21");
  check(reader(21, 70, 300), "buffer_rows = 200");
  nlohmann::json bad = a->cursor();
  bad["window"] = 1000;
  try {
    reader(21, 70, 200)->restore(bad);
    FAIL() << "window 1000 accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("window 1000"), std::string::npos) << e.what();
  }
}

TEST(StoreReader, UnshuffledReaderReturnsStoreOrder) {
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  ReaderOptions o;
  o.shuffle = false;
  o.batch_rows = 100;
  o.buffer_rows = 64;
  auto r = store.open_reader(shared_store(), o);
  const ActivationRows want = synth_rows(0, kSeqs, kD);
  ActivationRows b = r->next_rows();
  EXPECT_TRUE(b.sequence.equal(want.sequence.slice(0, 0, 100)));
  EXPECT_TRUE(b.activations.equal(rounded(want.activations.slice(0, 0, 100), RowDtype::Float16)));
}
