// Hub downloads against a local stand-in of the hub's HTTP API (tests/gpt2/fake_hub.py):
// checksums, resume after an interrupted transfer, the cache, and failing fast without network.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <random>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/hub.hpp"
#include "saelab/core/sha256.hpp"
#include "test_util.hpp"

namespace saelab::hub {
namespace {

namespace fs = std::filesystem;

using test::contains;
using test::error_of;
using test::read_bytes;
using test::scratch_dir;

// Runs fake_hub.py for the life of the object.
class FakeHub {
 public:
  FakeHub(const fs::path& root, const fs::path& log, std::vector<std::string> extra = {}) {
    const std::string script = (fs::path(SAELAB_SOURCE_DIR) / "tests/gpt2/fake_hub.py").string();
    std::vector<std::string> args = {"python3", script,          "--root", root.string(),
                                     "--repo",  "test-org/tiny", "--log",  log.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("python3", argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(fds[0]);
    if (line.empty()) throw std::runtime_error("fake_hub.py did not start (is python3 on PATH?)");
    endpoint_ = "http://127.0.0.1:" + line;
  }
  ~FakeHub() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  pid_t pid_ = -1;
  std::string endpoint_;
};

// A fake repository: config.json (git file), model.safetensors (LFS file), vocab.json.
fs::path make_repo(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"model_type": "gpt2", "n_layer": 2})";
  std::string weights(300000, '\0');
  std::mt19937 rng(1);
  for (auto& ch : weights) ch = static_cast<char>(rng());
  std::ofstream(dir / "model.safetensors", std::ios::binary) << weights;
  std::ofstream(dir / "vocab.json") << R"({"a": 0})";
  return dir;
}

FetchOptions options_for(const FakeHub& hub, const fs::path& cache) {
  FetchOptions o;
  o.endpoint = hub.endpoint();
  o.cache = cache;
  o.connect_timeout_s = 5;
  return o;
}

TEST(Hub, InterruptedDownloadResumesAndIsVerified) {
  const auto dir = scratch_dir();
  const auto repo = make_repo(dir / "repo");
  FakeHub hub(repo, dir / "server.log", {"--drop-after", "100000"});
  const auto opt = options_for(hub, dir / "cache");
  const auto target = dir / "cache" / "models" / "test-org--tiny";

  auto msg = error_of([&] { fetch_model("test-org/tiny", opt); });
  std::printf("  first attempt: %s\n", msg.c_str());
  EXPECT_TRUE(contains(msg, "stopped after 100000 of 300000 bytes") && contains(msg, "again to resume"))
      << msg;
  EXPECT_EQ(fs::file_size(target / "model.safetensors.incomplete"), 100000u);
  EXPECT_FALSE(fs::exists(target / "model.safetensors"));

  const auto result = fetch_model("test-org/tiny", opt);
  EXPECT_EQ(result.dir, target);
  ASSERT_EQ(result.files.size(), 3u);  // config.json, model.safetensors, vocab.json (merges.txt absent)
  for (const auto& f : result.files) {
    EXPECT_EQ(read_bytes(f.path), read_bytes(repo / f.name)) << f.name;
    EXPECT_EQ(f.sha256, sha256_file(repo / f.name)) << f.name;
  }
  EXPECT_FALSE(fs::exists(target / "model.safetensors.incomplete"));
  EXPECT_TRUE(contains(read_bytes(dir / "server.log"), "/cdn/model.safetensors range=bytes=100000-"))
      << read_bytes(dir / "server.log");
  // The verified hash is remembered for loaders.
  EXPECT_EQ(file_sha256_cached(target / "model.safetensors"), sha256_file(repo / "model.safetensors"));

  // Everything cached and verified: nothing is downloaded again.
  const auto before = read_bytes(dir / "server.log");
  const auto again = fetch_model("test-org/tiny", opt);
  for (const auto& f : again.files) EXPECT_FALSE(f.downloaded) << f.name;
  EXPECT_FALSE(contains(read_bytes(dir / "server.log").substr(before.size()), "/cdn/"));
}

TEST(Hub, ChecksumMismatchIsRejectedAndNothingIsKept) {
  for (const std::string file : {"model.safetensors", "config.json"}) {
    const auto dir = scratch_dir() / file;
    const auto repo = make_repo(dir / "repo");
    FakeHub hub(repo, dir / "server.log", {"--corrupt", file});
    const auto opt = options_for(hub, dir / "cache");
    std::string msg;
    try {
      fetch_model("test-org/tiny", opt);
    } catch (const FormatError& e) {
      msg = e.what();
    }
    std::printf("  %s\n", msg.c_str());
    EXPECT_TRUE(contains(msg, file) && contains(msg, "does not match") &&
                contains(msg, "run the command again"))
        << msg;
    EXPECT_TRUE(contains(msg, file == "config.json" ? "git blob id" : "SHA-256")) << msg;
    const auto target = dir / "cache" / "models" / "test-org--tiny";
    EXPECT_FALSE(fs::exists(target / file));
    EXPECT_FALSE(fs::exists(target / (file + ".incomplete")));
  }
}

TEST(Hub, UnknownRepositoryIsReported) {
  const auto dir = scratch_dir();
  FakeHub hub(make_repo(dir / "repo"), dir / "server.log");
  const auto msg = error_of([&] { fetch_model("test-org/other", options_for(hub, dir / "cache")); });
  EXPECT_TRUE(contains(msg, "HTTP 404") && contains(msg, "test-org/other") && contains(msg, "HF_TOKEN"))
      << msg;
}

// A local port whose accept queue is full: the kernel drops further SYNs, so a connect neither
// succeeds nor is refused - what an unreachable network looks like, without needing one.
class BlackHole {
 public:
  BlackHole() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listener_, 0) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("cannot set up a listening socket");
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 4; ++i) {  // fill the accept queue
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);  // non-blocking: in progress
      fillers_.push_back(fd);
    }
  }
  ~BlackHole() {
    for (int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1, port_ = 0;
  std::vector<int> fillers_;
};

TEST(Hub, NoNetworkFailsWithinSecondsAndSaysHowToPlaceFiles) {
  const auto dir = scratch_dir();
  BlackHole hole;
  struct Case {
    std::string endpoint;
    long timeout;
  };
  // Refused at once; a name that cannot resolve; a connect that hangs until the timeout.
  const std::vector<Case> cases = {{"http://127.0.0.1:9", 5},
                                   {"http://saelab-no-such-host.invalid", 5},
                                   {"http://127.0.0.1:" + std::to_string(hole.port()), 2}};
  for (const Case& c : cases) {
    FetchOptions o;
    o.endpoint = c.endpoint;
    o.cache = dir;
    o.connect_timeout_s = c.timeout;
    const auto t0 = std::chrono::steady_clock::now();
    const auto msg = error_of([&] { fetch_model("gpt2", o); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  %s: failed after %.2f s: %s\n", c.endpoint.c_str(), s, msg.c_str());
    EXPECT_LT(s, c.timeout + 2.0);
    EXPECT_TRUE(contains(msg, "cannot reach " + c.endpoint)) << msg;
    EXPECT_TRUE(contains(msg, "place the files by hand") &&
                contains(msg, "config.json and model.safetensors"))
        << msg;
    EXPECT_TRUE(contains(msg, "https://huggingface.co/openai-community/gpt2/tree/main")) << msg;
    EXPECT_TRUE(contains(msg, (dir / "models" / "openai-community--gpt2").string())) << msg;
  }
}

// A llama.cpp-style repository: GGUF files (one per quantization) and a README, no safetensors.
TEST(Hub, GgufRepositoriesTakeTheirOneGgufFileOrTheOneNamed) {
  const auto dir = scratch_dir();
  const auto repo = dir / "repo";
  fs::create_directories(repo);
  std::ofstream(repo / "README.md") << "# tiny\n";
  std::ofstream(repo / "tiny.Q4_1.gguf", std::ios::binary) << "GGUF q4_1 bytes";
  {
    FakeHub hub(repo, dir / "server.log");
    const auto one = fetch_model("test-org/tiny", options_for(hub, dir / "cache"));
    ASSERT_EQ(one.files.size(), 1u);
    EXPECT_EQ(one.files[0].name, "tiny.Q4_1.gguf");
    EXPECT_EQ(one.files[0].sha256, sha256_file(repo / "tiny.Q4_1.gguf"));
    EXPECT_EQ(read_bytes(one.files[0].path), read_bytes(repo / "tiny.Q4_1.gguf"));
  }
  std::ofstream(repo / "tiny.Q8_0.gguf", std::ios::binary) << "GGUF q8_0 bytes, larger";
  FakeHub hub(repo, dir / "server.log");
  auto opt = options_for(hub, dir / "cache2");
  const auto msg = error_of([&] { fetch_model("test-org/tiny", opt); });
  std::printf("  several GGUF files: %s\n", msg.c_str());
  EXPECT_TRUE(contains(msg, "2 GGUF files: tiny.Q4_1.gguf, tiny.Q8_0.gguf") && contains(msg, "--file"))
      << msg;
  EXPECT_FALSE(fs::exists(dir / "cache2" / "models" / "test-org--tiny" / "tiny.Q4_1.gguf"));
  opt.files = {"tiny.Q8_0.gguf"};
  opt.optional_files.clear();
  const auto chosen = fetch_model("test-org/tiny", opt);
  ASSERT_EQ(chosen.files.size(), 1u);
  EXPECT_EQ(chosen.files[0].sha256, sha256_file(repo / "tiny.Q8_0.gguf"));
  opt.files = {"tiny.Q2_K.gguf"};
  const auto missing = error_of([&] { fetch_model("test-org/tiny", opt); });
  EXPECT_TRUE(contains(missing, "has no tiny.Q2_K.gguf") && contains(missing, "tiny.Q8_0.gguf")) << missing;
}

TEST(Hub, RepositoryIdsAndCacheLayout) {
  EXPECT_EQ(canonical_repo("gpt2"), "openai-community/gpt2");
  EXPECT_EQ(canonical_repo("gpt2-xl"), "openai-community/gpt2-xl");
  EXPECT_EQ(canonical_repo("my-org/My.Model_2"), "my-org/My.Model_2");
  for (const std::string bad : {"", "../etc", "a/b/c", "a/..", "-x/y", "a b/c", "org/"}) {
    const auto msg = error_of([&] { canonical_repo(bad); });
    EXPECT_TRUE(contains(msg, "not a Hugging Face model id")) << "'" << bad << "': " << msg;
  }
  EXPECT_EQ(model_dir("gpt2", "main", "/c"), fs::path("/c/models/openai-community--gpt2"));
  EXPECT_EQ(model_dir("a/b", "v1.0", "/c"), fs::path("/c/models/a--b@v1.0"));
  ::setenv("SAELAB_CACHE", "/some/cache", 1);
  EXPECT_EQ(cache_root(), fs::path("/some/cache"));
  EXPECT_EQ(model_dir("gpt2"), fs::path("/some/cache/models/openai-community--gpt2"));
  ::unsetenv("SAELAB_CACHE");
}

TEST(Hub, FileHashIsRememberedUntilTheFileChanges) {
  const auto dir = scratch_dir();
  std::ofstream(dir / "w.bin") << "first";
  EXPECT_EQ(file_sha256_cached(dir / "w.bin"), sha256_hex("first"));
  EXPECT_TRUE(fs::exists(dir / "w.bin.sha256"));
  EXPECT_EQ(file_sha256_cached(dir / "w.bin"), sha256_hex("first"));
  std::ofstream(dir / "w.bin") << "second!";
  EXPECT_EQ(file_sha256_cached(dir / "w.bin"), sha256_hex("second!"));
}

}  // namespace
}  // namespace saelab::hub
