// Damaged and foreign stores: each failure is an exception whose message names the shard (or
// manifest) and says what is wrong, never a crash; info() pinpoints the damage and the rest of the
// store stays readable.
#include <fstream>

#include <gtest/gtest.h>
#include <hdf5.h>

#include "saelab/core/sha256.hpp"
#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kD = 16;

void make_store(const fs::path& dir, const std::string& hook = "blocks.0.hook_resid_pre") {
  auto w =
      hdf5_store::open_hdf5_writer(dir, test_meta(kD, hook), false, test_config(RowDtype::Float16, 120, 32));
  for (std::int64_t s = 0; s < 40; s += 4) w->append(synth_rows(s, s + 4, kD));
  w->finish();
}

std::string open_error(const fs::path& dir) {
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  try {
    ReaderOptions o;
    o.buffer_rows = 64;
    auto r = store.open_reader(dir, o);
    for (std::int64_t seen = 0; seen < 2 * r->rows_per_epoch(); seen += o.batch_rows) r->next_batch();
  } catch (const FormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << "reading " << dir << " raised no FormatError";
  return "";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "message lacks '" << part << "':\n  " << text;
}

nlohmann::json info(const fs::path& dir, bool verify) {
  return hdf5_store::Hdf5Store(hdf5_store::Hdf5StoreConfig{}).info(dir, verify);
}

// Statuses of the shards, e.g. "ok ok damaged ok".
std::string statuses(const nlohmann::json& j) {
  std::string s;
  for (const auto& sh : j["shards"]) s += (s.empty() ? "" : " ") + sh["status"].get<std::string>();
  return s;
}

// File address and size of chunk `index` of `dataset` in an HDF5 file.
std::pair<haddr_t, hsize_t> chunk_location(const fs::path& file, const char* dataset, hsize_t index) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, dataset, H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  hsize_t offset[2];
  unsigned mask = 0;
  haddr_t addr = 0;
  hsize_t size = 0;
  EXPECT_GE(H5Dget_chunk_info(ds, space, index, offset, &mask, &addr, &size), 0);
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(f);
  return {addr, size};
}

}  // namespace

TEST(StoreErrors, TruncatedShardIsNamedAndTheOthersStayReadable) {
  TempDir dir("truncated");
  make_store(dir.path());
  const fs::path victim = dir / "shard-000001.h5";
  fs::resize_file(victim, fs::file_size(victim) / 2);
  const std::string msg = open_error(dir.path());
  std::printf("truncated shard: %s\n", msg.c_str());
  expect_contains(msg, victim.string());
  expect_contains(msg, "truncated");
  const auto j = info(dir.path(), true);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(statuses(j), "ok damaged ok ok");
  expect_contains(j["shards"][1]["error"].get<std::string>(), "shard-000001.h5");
}

TEST(StoreErrors, FlippedBitFailsItsChunkChecksum) {
  TempDir dir("bitflip");
  make_store(dir.path());
  const fs::path victim = dir / "shard-000002.h5";
  const auto [addr, size] = chunk_location(victim, "activations", 1);
  ASSERT_GT(size, 0u);
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(addr + size / 2));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(static_cast<std::streamoff>(addr + size / 2));
    f.write(&c, 1);
  }
  const std::string msg = open_error(dir.path());
  std::printf("flipped bit: %s\n", msg.c_str());
  expect_contains(msg, victim.string());
  expect_contains(msg, "rows 32..63 of 'activations'");
  expect_contains(msg, "Fletcher32");
  EXPECT_EQ(statuses(info(dir.path(), false)), "ok ok ok ok")
      << "without verify only the structure is checked";
  const auto j = info(dir.path(), true);
  EXPECT_EQ(statuses(j), "ok ok damaged ok");
  const std::string err = j["shards"][2]["error"];
  expect_contains(err, "SHA-256");
  expect_contains(err, "rows 32..63");
}

TEST(StoreErrors, ManifestListingAMissingShard) {
  TempDir dir("missing");
  make_store(dir.path());
  fs::remove(dir / "shard-000003.h5");
  const std::string msg = open_error(dir.path());
  expect_contains(msg, (dir / "shard-000003.h5").string());
  expect_contains(msg, "listed in the manifest");
  EXPECT_EQ(statuses(info(dir.path(), false)), "ok ok ok missing");
}

TEST(StoreErrors, ShardSymlinkOutOfTheStoreIsRefused) {
  TempDir dir("symlink");
  TempDir elsewhere("symlink-target");
  make_store(dir.path());
  fs::rename(dir / "shard-000003.h5", elsewhere / "shard-000003.h5");
  fs::create_symlink(elsewhere / "shard-000003.h5", dir / "shard-000003.h5");
  const std::string msg = open_error(dir.path());
  expect_contains(msg, (dir / "shard-000003.h5").string());
  expect_contains(msg, "outside the store directory");
  EXPECT_EQ(statuses(info(dir.path(), false)), "ok ok ok damaged");
}

TEST(StoreErrors, ShardFromAnotherHookIsRefused) {
  TempDir dir("mixed"), other("mixed-other");
  make_store(dir.path());
  make_store(other.path(), "blocks.5.hook_resid_pre");
  const fs::path victim = dir / "shard-000001.h5";
  fs::copy_file(other / "shard-000001.h5", victim, fs::copy_options::overwrite_existing);
  // Mixed in properly: the manifest entry even carries the intruder's size and hash.
  auto m = hdf5_store::read_manifest(dir.path());
  m.shards[1].bytes = fs::file_size(victim);
  m.shards[1].sha256 = sha256_file(victim);
  hdf5_store::write_manifest(dir.path(), m);
  const std::string msg = open_error(dir.path());
  std::printf("foreign shard: %s\n", msg.c_str());
  expect_contains(msg, victim.string());
  expect_contains(msg, "does not belong to this store");
  expect_contains(msg, "hook is 'blocks.5.hook_resid_pre' but the store has 'blocks.0.hook_resid_pre'");
  EXPECT_EQ(statuses(info(dir.path(), true)), "ok damaged ok ok");
}

TEST(StoreErrors, ForeignFilesAndBrokenManifests) {
  TempDir dir("foreign");
  make_store(dir.path());
  const fs::path victim = dir / "shard-000000.h5";
  const auto size = fs::file_size(victim);
  write_bytes(victim, std::string(size, 'x'));  // same size, not HDF5
  std::string msg = open_error(dir.path());
  expect_contains(msg, victim.string());
  expect_contains(msg, "not a readable HDF5 file");
  expect_contains(msg, "signature");

  write_bytes(dir / "manifest.json", "{\"format\": \"saelab-activation-store\", \"format_version\": 1");
  msg = open_error(dir.path());
  expect_contains(msg, (dir / "manifest.json").string());
  expect_contains(msg, "not valid JSON");
  write_bytes(dir / "manifest.json", "{\"format\": \"saelab-activation-store\", \"format_version\": 7}");
  expect_contains(open_error(dir.path()), "format_version 7 is not supported");
  fs::remove(dir / "manifest.json");
  expect_contains(open_error(dir.path()), "no manifest.json");
}
