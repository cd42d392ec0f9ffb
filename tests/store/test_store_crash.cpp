// SIGKILL during a harvest: the driver (store_harvest_driver) is killed at points inside and
// between shard commits, then resumed. The resumed store must equal an uninterrupted one: the same
// shards byte for byte (same SHA-256), the same rows, the same statistics bit for bit. While
// killed, what the manifest lists must be intact and readable.
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;
namespace fs = std::filesystem;

namespace {

struct DriverRun {
  bool paused = false;
  bool killed = false;  // by our SIGKILL
  int exit_code = -1;
  std::string output;
};

// Runs the driver on `dir`; with `pause` set, waits for it to reach the point and SIGKILLs it.
DriverRun run_driver(const fs::path& dir, const std::string& pause) {
  // Everything the child needs is built before fork: it only dup2s and execs.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "SAELAB_STORE_DRIVER_PAUSE=", 26) != 0) env_strings.emplace_back(*e);
  if (!pause.empty()) env_strings.push_back("SAELAB_STORE_DRIVER_PAUSE=" + pause);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string exe = STORE_DRIVER_PATH, arg = dir.string();
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(arg.c_str()), nullptr};
    ::execve(exe.c_str(), argv, envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  DriverRun r;
  FILE* out = ::fdopen(fds[0], "r");
  char line[512];
  while (std::fgets(line, sizeof line, out)) {
    r.output += line;
    if (std::strncmp(line, "PAUSED", 6) == 0) {
      r.paused = true;
      ::kill(pid, SIGKILL);
    }
  }
  std::fclose(out);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

nlohmann::json shard_list(const fs::path& dir) {
  return hdf5_store::manifest_to_json(hdf5_store::read_manifest(dir))["shards"];
}

const fs::path& reference_store() {
  static TempDir dir("crash-reference");
  static bool made = false;
  if (!made) {
    const DriverRun r = run_driver(dir.path(), "");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    made = true;
  }
  return dir.path();
}

// Kills the driver at each point in turn (resuming in between), then lets it finish.
void kill_resume_compare(const std::vector<std::string>& points) {
  std::string name;
  for (const auto& p : points) name += p + "_";
  TempDir dir("crash-" + name);
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  for (const auto& point : points) {
    const DriverRun r = run_driver(dir.path(), point);
    ASSERT_TRUE(r.paused && r.killed) << point << ": " << r.output;
    const auto j = store.info(dir.path(), true);
    EXPECT_TRUE(j["ok"].get<bool>()) << "after SIGKILL at " << point << ": " << j.dump(1);
    const std::int64_t rows = j["rows"];
    if (rows > 0) {
      const ActivationRows got = read_all(dir.path());
      EXPECT_TRUE(got.sequence.equal(synth_rows(0, j["sequences"], 24).sequence)) << point;
    }
    std::printf("SIGKILL at %-18s -> %lld rows committed in %zu shards, %zu stray files\n", point.c_str(),
                static_cast<long long>(rows), j["shards"].size(), j["unlisted_files"].size());
  }
  const DriverRun done = run_driver(dir.path(), "");
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const fs::path& ref = reference_store();
  EXPECT_EQ(shard_list(dir.path()), shard_list(ref)) << "shards differ from the uninterrupted run";
  const ActivationRows a = read_all(dir.path()), b = read_all(ref);
  EXPECT_TRUE(a.activations.equal(b.activations));
  EXPECT_TRUE(a.tokens.equal(b.tokens) && a.sequence.equal(b.sequence) && a.position.equal(b.position));
  EXPECT_EQ(store.stats(dir.path())->mean, store.stats(ref)->mean);
  EXPECT_EQ(store.stats(dir.path())->mean_norm, store.stats(ref)->mean_norm);
  EXPECT_TRUE(store.info(dir.path(), true)["unlisted_files"].empty());
}

}  // namespace

TEST(StoreCrash, ReferenceRunIsComplete) {
  const auto m = hdf5_store::read_manifest(reference_store());
  EXPECT_TRUE(m.complete);
  EXPECT_EQ(m.rows(), synth_row_count(0, 80));
  EXPECT_GE(m.shards.size(), 10u);
}

TEST(StoreCrash, BeforeTheFirstShardIsCommitted) {
  kill_resume_compare({"shard_open:1"});
}
TEST(StoreCrash, InTheMiddleOfWritingTheFirstShard) {
  kill_resume_compare({"chunk_written:2"});
}
TEST(StoreCrash, InTheMiddleOfALaterShard) {
  kill_resume_compare({"chunk_written:17"});
}
TEST(StoreCrash, AfterClosingBeforeRenaming) {
  kill_resume_compare({"shard_closed:3"});
}
TEST(StoreCrash, AfterRenamingBeforeTheManifest) {
  kill_resume_compare({"shard_renamed:2"});
}
TEST(StoreCrash, BetweenShards) {
  kill_resume_compare({"manifest_written:4"});
}
TEST(StoreCrash, RepeatedlyAtDifferentPoints) {
  kill_resume_compare({"chunk_written:3", "shard_renamed:2", "manifest_written:1", "chunk_written:9"});
}
