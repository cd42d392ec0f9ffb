// Joining the parts of a data-parallel harvest: one manifest over the parts' shards must read as
// the store one writer would have made of the same sequences, and bad parts are refused by name.
#include <gtest/gtest.h>

#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kD = 8;

void write_part(const fs::path& dir, std::int64_t first, std::int64_t end, bool finish = true) {
  auto w = hdf5_store::open_hdf5_writer(dir, test_meta(kD), false, test_config(RowDtype::Float32, 50, 16));
  for (std::int64_t s = first; s < end; s += 5) w->append(synth_rows(s, std::min(s + 5, end), kD));
  if (finish)
    w->finish();
  else
    w->commit();
}

std::string join_error(const fs::path& dir, const std::vector<fs::path>& parts) {
  try {
    hdf5_store::Hdf5Store(hdf5_store::Hdf5StoreConfig{}).join_parts(dir, parts);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "joining " << dir << " raised no error";
  return "";
}

}  // namespace

TEST(StoreJoin, PartsReadAsOneWritersStore) {
  TempDir one("join-one"), joined("join-parts");
  write_part(one.path(), 0, 40);
  const fs::path a = joined / "parts" / "rank-0-of-2", b = joined / "parts" / "rank-1-of-2";
  write_part(a, 0, 20);
  write_part(b, 20, 40);
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  store.join_parts(joined.path(), {a, b});
  const ActivationRows x = read_all(one.path()), y = read_all(joined.path());
  EXPECT_TRUE(x.activations.equal(y.activations));
  EXPECT_TRUE(x.sequence.equal(y.sequence));
  EXPECT_TRUE(x.position.equal(y.position));
  EXPECT_TRUE(x.tokens.equal(y.tokens));
  const auto s1 = store.stats(one.path()).value(), s2 = store.stats(joined.path()).value();
  EXPECT_EQ(s1.rows, s2.rows);
  EXPECT_NEAR(s1.mean_norm, s2.mean_norm, 1e-12 * s1.mean_norm);
  std::printf("  %lld rows equal; mean_norm %.17g and %.17g\n", static_cast<long long>(s1.rows), s1.mean_norm,
              s2.mean_norm);
  const auto info = store.info(joined.path(), /*verify=*/true);
  EXPECT_TRUE(info["ok"].get<bool>()) << info.dump();
  EXPECT_TRUE(info["unlisted_files"].empty()) << info.dump();
  EXPECT_EQ(info["shards"][0]["file"], "parts/rank-0-of-2/shard-000000.h5");
}

TEST(StoreJoin, BadPartsAreRefusedByName) {
  TempDir dir("join-bad");
  const fs::path a = dir / "parts" / "a", b = dir / "parts" / "b", c = dir / "parts" / "c";
  write_part(a, 0, 20);
  write_part(b, 10, 30);         // overlaps a
  write_part(c, 20, 30, false);  // not finished
  std::string msg = join_error(dir.path(), {a, b});
  std::printf("  error: %s\n", msg.c_str());
  EXPECT_NE(msg.find("starts at sequence 10 but the parts before it end at 20"), std::string::npos) << msg;
  msg = join_error(dir.path(), {a, c});
  std::printf("  error: %s\n", msg.c_str());
  EXPECT_NE(msg.find("part 2 of 2 is not complete"), std::string::npos) << msg;
  msg = join_error(dir.path(), {dir / "elsewhere"});
  EXPECT_NE(msg.find("is not a directory"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "manifest.json"));  // nothing was committed
}

TEST(StoreJoin, ManifestShardReferencesStayInside) {
  TempDir dir("join-refs");
  const fs::path a = dir / "parts" / "a";
  write_part(a, 0, 20);
  hdf5_store::Hdf5Store(hdf5_store::Hdf5StoreConfig{}).join_parts(dir.path(), {a});
  for (const char* bad : {"parts/../shard-000000.h5", "parts/a/b/shard-000000.h5", "../shard-000000.h5",
                          "other/a/shard-000000.h5"}) {
    auto j = nlohmann::json::parse(read_bytes(dir / "manifest.json"));
    j["shards"][0]["file"] = bad;
    try {
      hdf5_store::manifest_from_json(j, "manifest.json");
      ADD_FAILURE() << "accepted shard reference " << bad;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("is not a plain file name"), std::string::npos) << e.what();
    }
  }
}
