// Checkpoint directories: commit protocol, corruption fallback, pruning, leftovers.
#include <fstream>

#include <gtest/gtest.h>

#include "saelab/formats/checkpoint_dir.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

Checkpoint make_ckpt(std::int64_t step) {
  Checkpoint c;
  c.step = step;
  c.tensors["sae"] = {{"W_enc", pattern(torch::kFloat32, {4, 8})}, {"b_dec", pattern(torch::kFloat32, {4})}};
  c.tensors["optimizer"] = {{"W_enc.exp_avg", pattern(torch::kFloat32, {4, 8}) * double(step)},
                            {"step", torch::tensor({step}, torch::kInt64)}};
  c.json["trainer_state"] = {{"step", step}, {"tokens", step * 4096}, {"lr", 4e-4}};
  return c;
}

std::vector<std::string> dir_names(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(root)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

void flip_byte(const fs::path& file, std::uint64_t offset) {
  std::string bytes = read_bytes(file);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x01);
  write_bytes(file, bytes);
}

TEST(CheckpointDir, WriteFindAndLoad) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  auto r1 = write_checkpoint(root, make_ckpt(100), 3);
  auto r2 = write_checkpoint(root, make_ckpt(200), 3);
  EXPECT_EQ(r2.dir, root / "step-000000000200");
  EXPECT_TRUE(r1.pruned.empty() && r2.pruned.empty());
  EXPECT_EQ(dir_names(root), (std::vector<std::string>{"step-000000000100", "step-000000000200"}));
  EXPECT_EQ(dir_names(r2.dir),
            (std::vector<std::string>{"COMMITTED", "manifest.json", "optimizer.safetensors",
                                      "sae.safetensors", "trainer_state.json"}));
  LatestCheckpoint latest = find_latest_valid(root);
  ASSERT_TRUE(latest.dir.has_value());
  EXPECT_EQ(*latest.dir, r2.dir);
  EXPECT_EQ(latest.step, 200);
  EXPECT_TRUE(latest.warnings.empty());

  Checkpoint back = load_checkpoint(*latest.dir);
  Checkpoint want = make_ckpt(200);
  EXPECT_EQ(back.step, 200);
  EXPECT_EQ(back.json, want.json);
  ASSERT_EQ(back.tensors.size(), want.tensors.size());
  for (const auto& [file, tensors] : want.tensors)
    for (const auto& [name, t] : tensors)
      EXPECT_TRUE(bitwise_equal(back.tensors.at(file).at(name), t)) << file << "/" << name;

  // The manifest lists each file with its size and SHA-256, and COMMITTED holds the manifest's hash.
  json manifest = json::parse(read_bytes(r2.dir / "manifest.json"));
  EXPECT_EQ(manifest["step"], 200);
  EXPECT_EQ(manifest["files"]["sae.safetensors"]["sha256"], sha256_file(r2.dir / "sae.safetensors"));
  EXPECT_EQ(manifest["files"]["sae.safetensors"]["size"], fs::file_size(r2.dir / "sae.safetensors"));
  EXPECT_EQ(read_bytes(r2.dir / "COMMITTED"), sha256_hex(read_bytes(r2.dir / "manifest.json")) + "\n");
}

TEST(CheckpointDir, CorruptNewestFallsBackWithWarning) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  write_checkpoint(root, make_ckpt(100), 2);
  auto newest = write_checkpoint(root, make_ckpt(200), 2);
  flip_byte(newest.dir / "sae.safetensors", fs::file_size(newest.dir / "sae.safetensors") - 3);
  LatestCheckpoint latest = find_latest_valid(root);
  ASSERT_TRUE(latest.dir.has_value());
  EXPECT_EQ(latest.step, 100);
  ASSERT_EQ(latest.warnings.size(), 1u);
  std::cout << "  warning: " << latest.warnings[0] << "\n";
  for (const char* n : {"step-000000000200", "sae.safetensors", "SHA-256", "corrupt"})
    EXPECT_NE(latest.warnings[0].find(n), std::string::npos) << n;
  expect_error<FormatError>([&] { load_checkpoint(newest.dir); },
                            {"step-000000000200", "not valid", "sae.safetensors", "corrupt"});
}

TEST(CheckpointDir, TruncatedFileAndTamperedManifestAreSkipped) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  write_checkpoint(root, make_ckpt(100), 3);
  auto mid = write_checkpoint(root, make_ckpt(200), 3);
  auto top = write_checkpoint(root, make_ckpt(300), 3);
  fs::resize_file(top.dir / "trainer_state.json", 5);
  flip_byte(mid.dir / "manifest.json", 10);
  LatestCheckpoint latest = find_latest_valid(root);
  EXPECT_EQ(latest.step, 100);
  ASSERT_EQ(latest.warnings.size(), 2u);
  for (const auto& w : latest.warnings) std::cout << "  warning: " << w << "\n";
  EXPECT_NE(latest.warnings[0].find("trainer_state.json' is 5 bytes"), std::string::npos);
  EXPECT_NE(latest.warnings[1].find("does not match the SHA-256 in COMMITTED"), std::string::npos);
}

TEST(CheckpointDir, MissingMarkerIsIgnored) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  write_checkpoint(root, make_ckpt(100), 2);
  auto newest = write_checkpoint(root, make_ckpt(200), 2);
  fs::remove(newest.dir / "COMMITTED");
  LatestCheckpoint latest = find_latest_valid(root);
  EXPECT_EQ(latest.step, 100);
  ASSERT_EQ(latest.warnings.size(), 1u);
  EXPECT_NE(latest.warnings[0].find("no COMMITTED marker"), std::string::npos) << latest.warnings[0];
}

TEST(CheckpointDir, KeepsLastKAndNeverFewerThanTwo) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  std::vector<fs::path> pruned;
  for (std::int64_t s = 1; s <= 5; ++s) {
    auto r = write_checkpoint(root, make_ckpt(s * 10), 2);
    pruned.insert(pruned.end(), r.pruned.begin(), r.pruned.end());
  }
  EXPECT_EQ(dir_names(root), (std::vector<std::string>{"step-000000000040", "step-000000000050"}));
  EXPECT_EQ(pruned.size(), 3u);
  expect_error<ConfigError>([&] { write_checkpoint(root, make_ckpt(60), 1); },
                            {"keep_last is 1", "must be >= 2"});
}

TEST(CheckpointDir, LeftoverTmpIsIgnoredThenCleaned) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  write_checkpoint(root, make_ckpt(100), 2);
  // A crash mid-write leaves tmp-<step> (complete-looking, even with a marker): never read.
  fs::copy(root / "step-000000000100", root / "tmp-000000000200");
  LatestCheckpoint latest = find_latest_valid(root);
  EXPECT_EQ(latest.step, 100);
  EXPECT_TRUE(latest.warnings.empty());
  write_checkpoint(root, make_ckpt(300), 2);
  EXPECT_EQ(dir_names(root), (std::vector<std::string>{"step-000000000100", "step-000000000300"}));
}

TEST(CheckpointDir, RewritingAStepReplacesIt) {
  // A run resumed from an older checkpoint reaches the same step again.
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  write_checkpoint(root, make_ckpt(100), 2);
  auto first = write_checkpoint(root, make_ckpt(200), 2);
  flip_byte(first.dir / "sae.safetensors", 100);
  Checkpoint again = make_ckpt(200);
  again.json["trainer_state"]["note"] = "second";
  write_checkpoint(root, again, 2);
  LatestCheckpoint latest = find_latest_valid(root);
  EXPECT_EQ(latest.step, 200);
  EXPECT_TRUE(latest.warnings.empty());
  EXPECT_EQ(load_checkpoint(*latest.dir).json.at("trainer_state")["note"], "second");
  EXPECT_EQ(dir_names(root).size(), 2u);
}

TEST(CheckpointDir, EmptyOrMissingRootHasNoCheckpoint) {
  TempDir tmp;
  EXPECT_FALSE(find_latest_valid(tmp / "none").dir.has_value());
  EXPECT_FALSE(find_latest_valid(tmp.path()).dir.has_value());
}

TEST(CheckpointDir, HostileManifestCannotNameOtherFiles) {
  TempDir tmp;
  const fs::path root = tmp / "ckpt";
  auto r = write_checkpoint(root, make_ckpt(100), 2);
  write_bytes(tmp / "secret", "x");
  json manifest = json::parse(read_bytes(r.dir / "manifest.json"));
  manifest["files"]["../../secret"] = {{"sha256", sha256_file(tmp / "secret")}, {"size", 1}};
  const std::string text = manifest.dump(2) + "\n";
  write_bytes(r.dir / "manifest.json", text);
  write_bytes(r.dir / "COMMITTED", sha256_hex(text) + "\n");
  auto problem = verify_checkpoint(r.dir);
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("'../../secret', which is not a plain checkpoint file name"), std::string::npos)
      << *problem;
  // Type confusion in a manifest whose marker matches is reported, not thrown.
  const std::string weird = "{\"format\": 7, \"version\": \"x\", \"files\": []}";
  write_bytes(r.dir / "manifest.json", weird);
  write_bytes(r.dir / "COMMITTED", sha256_hex(weird));
  problem = verify_checkpoint(r.dir);
  ASSERT_TRUE(problem.has_value());
  std::cout << "  problem: " << *problem << "\n";
}

TEST(CheckpointDir, RejectsBadFileNamesAndSteps) {
  TempDir tmp;
  Checkpoint c = make_ckpt(1);
  c.json["../evil"] = json::object();
  expect_error<Error>([&] { write_checkpoint(tmp / "r", c, 2); }, {"'../evil.json' is not allowed"});
  Checkpoint m = make_ckpt(1);
  m.json["manifest"] = json::object();
  expect_error<Error>([&] { write_checkpoint(tmp / "r", m, 2); }, {"reserved for the manifest"});
  Checkpoint s = make_ckpt(-1);
  expect_error<Error>([&] { write_checkpoint(tmp / "r", s, 2); }, {"step -1 is out of range"});
}

}  // namespace
}  // namespace saelab::test
