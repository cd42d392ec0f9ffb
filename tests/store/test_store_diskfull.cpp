// A full disk while harvesting: the writer fails with an error that names the store and the cause,
// committed shards stay intact and readable, no temporary file is left behind, and after space is
// freed the harvest resumes and completes the store with every row exactly once.
//
// As root the store lives on a 1 MiB tmpfs (a real ENOSPC); otherwise RLIMIT_FSIZE stands in for
// it (writes past the limit fail with EFBIG once SIGXFSZ is ignored; SAELAB_TEST_DISKFULL_RLIMIT=1
// forces this path).
#include <csignal>
#include <cstdlib>

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kD = 64;
constexpr std::int64_t kSeqs = 600;

class DiskLimit {
 public:
  explicit DiskLimit(const fs::path& dir) : dir_(dir) {
    const char* force_rlimit = std::getenv("SAELAB_TEST_DISKFULL_RLIMIT");  // exercises the fallback
    if (!(force_rlimit && *force_rlimit) && ::geteuid() == 0 &&
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m") == 0) {
      tmpfs_ = true;
      return;
    }
    std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit lim = saved_;
    lim.rlim_cur = 64 * 1024;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  const char* kind() const { return tmpfs_ ? "1 MiB tmpfs" : "RLIMIT_FSIZE 64 KiB"; }
  void lift() {
    if (tmpfs_) {
      ASSERT_EQ(::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0);
    } else {
      ::setrlimit(RLIMIT_FSIZE, &saved_);
    }
  }
  ~DiskLimit() {
    if (tmpfs_)
      ::umount2(dir_.c_str(), MNT_DETACH);
    else
      ::setrlimit(RLIMIT_FSIZE, &saved_);
  }

 private:
  fs::path dir_;
  bool tmpfs_ = false;
  rlimit saved_{};
};

}  // namespace

TEST(StoreDiskFull, FailsCleanlyKeepsCommittedShardsAndResumes) {
  TempDir root("diskfull");
  const fs::path mnt = root / "mnt";
  fs::create_directories(mnt);
  const fs::path dir = mnt / "store";
  const auto cfg = test_config(RowDtype::Float32, 100000, 16);  // shards end at commit()
  std::string error;
  std::int64_t committed = 0;
  {
    DiskLimit limit(mnt);
    {
      auto w = hdf5_store::open_hdf5_writer(dir, test_meta(kD), false, cfg);
      try {
        // Growing commits: many small shards fill a tmpfs; a large one exceeds a per-file limit.
        for (std::int64_t s = 0, k = 1; s < kSeqs; s += k, ++k) {
          w->append(synth_rows(s, std::min(kSeqs, s + k), kD));
          w->commit();
        }
        w->finish();
      } catch (const Error& e) {
        error = e.what();
      }
      committed = w->committed_rows();
      if (!error.empty()) {
        try {
          w->append(synth_rows(w->committed_sequences(), w->committed_sequences() + 1, kD));
          ADD_FAILURE() << "a failed writer accepted more rows";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("failed earlier"), std::string::npos) << e.what();
        }
      }
    }
    std::printf("disk full (%s): %s\n", limit.kind(), error.c_str());
    ASSERT_FALSE(error.empty()) << "the store never hit the limit";
    EXPECT_TRUE(error.find("No space left on device") != std::string::npos ||
                error.find("File too large") != std::string::npos)
        << error;
    EXPECT_NE(error.find(dir.string()), std::string::npos) << error;
    EXPECT_NE(error.find("committed data is intact"), std::string::npos) << error;

    // What was committed is intact (checksums and hashes verified) and exactly the expected rows.
    hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
    const auto j = store.info(dir, true);
    EXPECT_TRUE(j["ok"].get<bool>()) << j.dump(1);
    EXPECT_GT(committed, 0);
    EXPECT_EQ(j["rows"], committed);
    for (const auto& ent : fs::directory_iterator(dir))
      EXPECT_EQ(ent.path().string().find(".tmp"), std::string::npos) << "left behind: " << ent.path();
    const ActivationRows got = read_all(dir);
    const std::int64_t seqs = j["sequences"];
    EXPECT_TRUE(got.activations.equal(synth_rows(0, seqs, kD).activations));

    limit.lift();
    harvest(dir, cfg, kD, kSeqs, 7, true);
    const ActivationRows all = read_all(dir);
    const ActivationRows want = synth_rows(0, kSeqs, kD);
    EXPECT_TRUE(all.activations.equal(want.activations));
    EXPECT_TRUE(all.sequence.equal(want.sequence) && all.position.equal(want.position));
    const double mean_norm = want.activations.to(torch::kDouble).norm(2, 1).mean().item<double>();
    EXPECT_NEAR(store.stats(dir)->mean_norm, mean_norm, 1e-12 * mean_norm);
    EXPECT_EQ(store.stats(dir)->rows, want.activations.size(0));
  }
}
