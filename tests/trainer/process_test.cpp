// Real interruptions: a training process killed with SIGKILL (no chance to clean up) or stopped
// with SIGTERM (checkpoint, clean exit), then resumed by a new process. The final SAE file must be
// byte for byte the one an uninterrupted process writes.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "saelab/core/fs_util.hpp"
#include "saelab/train/checkpoint.hpp"
#include "test_data.hpp"
#include "support/support.hpp"

extern char** environ;

namespace saelab {
namespace {
namespace fs = std::filesystem;

pid_t spawn_child(const fs::path& run_dir, const std::string& mode, int slow_ms, const fs::path& output) {
  std::vector<std::string> args = {TRAINER_CHILD, run_dir.string(), mode, std::to_string(slow_ms)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << TRAINER_CHILD;
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// Polls until the child has written a checkpoint at or after `step`.
bool wait_for_checkpoint(const fs::path& run_dir, std::int64_t step) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  const std::string want =
      "step-" + std::string(12 - std::to_string(step).size(), '0') + std::to_string(step);
  while (std::chrono::steady_clock::now() < deadline) {
    auto dirs = list_train_checkpoints(run_dir / "checkpoints");
    if (!dirs.empty() && dirs.front().filename().string() >= want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

const std::string& reference_sae_bytes() {
  static const std::string bytes = [] {
    const fs::path dir = test::scratch_dir("process_reference");
    const int status = wait_child(spawn_child(dir, "fresh", 0, dir / "out.txt"));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_bytes(dir / "out.txt");
    return test::read_bytes(dir / "sae" / "sae_weights.safetensors");
  }();
  return bytes;
}

TEST(TrainerProcess, SigkillMidRunThenResumeWritesTheSameSae) {
  ASSERT_FALSE(reference_sae_bytes().empty());
  const fs::path dir = test::scratch_dir("process_sigkill");
  const pid_t pid = spawn_child(dir, "fresh", 100, dir / "first.txt");
  ASSERT_TRUE(wait_for_checkpoint(dir, 20)) << test::read_bytes(dir / "first.txt");
  kill(pid, SIGKILL);
  const int status = wait_child(pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child finished before the kill";
  EXPECT_FALSE(fs::exists(dir / "sae"));
  const std::string killed_at = list_train_checkpoints(dir / "checkpoints").front().filename().string();

  const int resumed = wait_child(spawn_child(dir, "resume", 0, dir / "second.txt"));
  ASSERT_TRUE(WIFEXITED(resumed) && WEXITSTATUS(resumed) == 0) << test::read_bytes(dir / "second.txt");
  EXPECT_NE(test::read_bytes(dir / "second.txt").find("status completed steps 60"), std::string::npos);
  const std::string bytes = test::read_bytes(dir / "sae" / "sae_weights.safetensors");
  std::printf("killed after %s; resumed SAE file %zu bytes, identical to uninterrupted: %s\n",
              killed_at.c_str(), bytes.size(), bytes == reference_sae_bytes() ? "yes" : "NO");
  EXPECT_TRUE(bytes == reference_sae_bytes());
}

TEST(TrainerProcess, SigtermCheckpointsAndExitsCleanly) {
  ASSERT_FALSE(reference_sae_bytes().empty());
  const fs::path dir = test::scratch_dir("process_sigterm");
  const pid_t pid = spawn_child(dir, "fresh", 100, dir / "first.txt");
  ASSERT_TRUE(wait_for_checkpoint(dir, 10)) << test::read_bytes(dir / "first.txt");
  kill(pid, SIGTERM);
  const int status = wait_child(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_bytes(dir / "first.txt");
  const std::string out = test::read_bytes(dir / "first.txt");
  EXPECT_NE(out.find("status interrupted"), std::string::npos) << out;
  // The checkpoint of the interrupted step is the newest, and it verifies.
  auto dirs = list_train_checkpoints(dir / "checkpoints");
  ASSERT_FALSE(dirs.empty());
  const TrainCheckpoint c = load_train_checkpoint(dirs.front());
  EXPECT_NE(out.find("steps " + std::to_string(c.step)), std::string::npos) << out;

  const int resumed = wait_child(spawn_child(dir, "resume", 0, dir / "second.txt"));
  ASSERT_TRUE(WIFEXITED(resumed) && WEXITSTATUS(resumed) == 0) << test::read_bytes(dir / "second.txt");
  EXPECT_TRUE(test::read_bytes(dir / "sae" / "sae_weights.safetensors") == reference_sae_bytes());
}

}  // namespace
}  // namespace saelab
