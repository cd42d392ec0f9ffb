// saelab serve, started as its own process on the steer_run fixture: the page in headless
// Chromium (tests/browser/serve_check.mjs) against activations and a greedy completion computed
// here directly, and HTTP robustness (tests/browser/serve_robustness.mjs). Screenshots land in
// build/test-screenshots/serve.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "saelab/core/token_display.hpp"
#include "saelab/sae/apply.hpp"
#include "steer_test_util.hpp"
#include "support/support.hpp"

namespace saelab {
namespace {

namespace fs = std::filesystem;
const fs::path kBrowserDir = fs::path(SAELAB_SOURCE_DIR) / "tests" / "browser";

// `saelab serve` on a free port, stopped with SIGTERM when this goes out of scope.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& extra) : log_(test::scratch_dir("serve") / "serve.log") {
    const std::string cmd =
        "sh -c " + test::shell_quote("echo $$; exec " + std::string(SAELAB_EXE) + " serve " +
                                     test::shell_quote(test::steer_run_dir().string()) + " --port 0 " +
                                     extra + " 2>" + test::shell_quote(log_.string()));
    pipe_ = popen(cmd.c_str(), "r");
    char line[512];
    if (pipe_ && std::fgets(line, sizeof line, pipe_)) pid_ = std::atoi(line);
    if (pipe_ && std::fgets(line, sizeof line, pipe_)) {
      std::string s(line);
      const auto at = s.find("http://");
      if (at != std::string::npos) url_ = s.substr(at, s.find_last_not_of("\r\n") + 1 - at);
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) kill(pid_, SIGTERM);
    if (pipe_) status_ = pclose(pipe_);
  }
  const std::string& url() const { return url_; }
  std::string log() const { return fs::exists(log_) ? test::read_bytes(log_) : ""; }

 private:
  fs::path log_;
  FILE* pipe_ = nullptr;
  int pid_ = -1, status_ = 0;
  std::string url_;
};

void require_browser() {
  ASSERT_TRUE(fs::exists(kBrowserDir / "node_modules" / "playwright-core"))
      << "playwright-core is not installed: run scripts/setup.sh --oracle (npm ci in tests/browser)";
  ASSERT_TRUE(fs::exists("/usr/bin/chromium")) << "chromium is not installed: run scripts/setup.sh --oracle";
}

// What the page must show for `text`, computed without the server: the hook's activations
// through the SAE, the harvest's first positions left out.
nlohmann::json expected_page(const std::string& text, const std::string& prompt) {
  auto& in = test::steer_run();
  torch::NoGradGuard g;
  const auto ids = in.source->tokenize(text);
  const auto x = in.source->run_with_hooks(test::tokens_of(ids), {in.hook}).at(in.hook)[0];
  auto f = encode_sae(*in.sae.sae, x, 1.0).to(torch::kCPU);  // [T, d_sae]
  f.narrow(0, 0, in.rows.first_position).zero_();
  const auto [peak, pos] = f.max(0);  // [d_sae]
  const auto latent = peak.argmax().item<std::int64_t>();
  std::vector<float> values;
  std::string display;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    values.push_back(f[static_cast<std::int64_t>(i)][latent].item<float>());
    display += display_text(in.source->decode({ids[i]}));
  }
  const auto steer_latent = std::get<1>(test::steer_reference().max.max(0)).item<std::int64_t>();
  GenerateOptions o;
  o.max_new_tokens = 16;
  o.stop_token = in.source->info().eos_token;
  const auto plain = in.source->generate(in.source->tokenize(prompt), o);
  return {{"text", text},
          {"hook", in.hook},
          {"latent", latent},
          {"values", values},
          {"display", display},
          {"peak_pos", pos[latent].item<std::int64_t>()},
          {"prompt", prompt},
          {"steer_latent", steer_latent},
          {"default", in.source->decode(plain)}};
}

TEST(Serve, BrowserTypesTextOpensALatentAndSteers) {
  require_browser();
  const auto expect =
      expected_page("The quantum tardigrade sang in Esperanto, and the Senate applauded the tax cuts.",
                    "The President said that");
  ServeProcess server("");
  ASSERT_FALSE(server.url().empty()) << "saelab serve did not start:\n" << server.log();
  test::TempDir dir("serve-browser");
  test::write_bytes(dir / "expect.json", expect.dump());
  const fs::path shots = fs::path(SAELAB_BINARY_DIR) / "test-screenshots" / "serve";
  const auto r =
      test::run_command("node " + test::shell_quote((kBrowserDir / "serve_check.mjs").string()) + " " +
                        test::shell_quote(server.url()) + " " + test::shell_quote(shots.string()) + " " +
                        test::shell_quote((dir / "expect.json").string()) + " 2>&1");
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output << "\nserver log:\n" << server.log();
  for (const char* shot : {"serve-text.png", "serve-dashboard.png", "serve-steer.png"})
    EXPECT_TRUE(fs::exists(shots / shot)) << shot;
}

TEST(Serve, HttpRobustness) {
  ServeProcess server("--request-timeout-ms 2000 --max-queued 2");
  ASSERT_FALSE(server.url().empty()) << "saelab serve did not start:\n" << server.log();
  const auto r =
      test::run_command("node " + test::shell_quote((kBrowserDir / "serve_robustness.mjs").string()) + " " +
                        test::shell_quote(server.url()) + " 2>&1");
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output << "\nserver log:\n" << server.log();
}

TEST(Serve, RefusesAnAddressItCannotUse) {
  const auto r =
      test::run_command(std::string(SAELAB_EXE) + " serve " +
                        test::shell_quote(test::steer_run_dir().string()) + " --host not-an-ip 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(test::contains(r.output, "--host 'not-an-ip' is not an IP address")) << r.output;
}

}  // namespace
}  // namespace saelab
