// The report in headless Chromium (Debian's chromium driven by playwright-core from npm, both
// installed by scripts/setup.sh --oracle): the index lists every latent, searching and sorting
// work, a feature page's coloured tokens carry the stored activations, and an XSS corpus stays
// text. The checks themselves are tests/browser/*.mjs; screenshots land in the build tree.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include <gtest/gtest.h>

#include "fakes.hpp"
#include "plugins.hpp"
#include "report_files.hpp"
#include "saelab/core/token_display.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/interfaces/reporter.hpp"
#include "support/support.hpp"

using namespace saelab;
using namespace saelab::test;
namespace fs = std::filesystem;

namespace {

const fs::path kBrowserDir = fs::path(SAELAB_SOURCE_DIR) / "tests" / "browser";

// A source whose 12 tokens are the XSS corpus (ids come from bytes, so every one appears).
class XssSource : public FakeSource {
 public:
  XssSource() : FakeSource(6) {}
  static const std::vector<std::string>& tokens() {
    static const std::vector<std::string> v = {"<script>alert(1)</script>",
                                               "\"><img src=x onerror=alert(1)>",
                                               "</script><script>alert(1)</script>",
                                               "<!--<script>",
                                               "javascript:alert(1)",
                                               "&lt;",
                                               "\u2028",
                                               "\u2029",
                                               std::string("\0", 1),
                                               "\x80",
                                               "\u202E",
                                               std::string(100 * 1024, 'A')};
    return v;
  }
  std::string decode(const std::vector<std::int32_t>& ids) const override {
    std::string s;
    for (auto id : ids) s += tokens().at(static_cast<std::size_t>(id));
    return s;
  }
};

fs::path build_report(ActivationSource& src, std::int64_t d_sae, const std::string& name,
                      std::map<std::string, OptionValue> opts = {}) {
  auto sae = random_sae(6, d_sae, 3);
  const auto corpus = write_corpus(name + ".txt", corpus_text(4000));
  CorpusConfig c;
  c.paths = {corpus};
  c.format = "text";
  c.context_size = 16;
  TokenBatches tokens(c, src);
  const auto dir = fs::path(corpus).parent_path() / name;
  ReportContext ctx{*sae, &src, kResidHook, &tokens, nullptr,        nlohmann::json(),
                    dir,  1.0,  {},         {},      "model: fake\n"};
  opts.emplace("tokens", std::int64_t(400));
  opts.emplace("chunk_size", std::int64_t(16));
  make_plugin<Reporter>("html", opts, 5)->write(ctx);
  return dir;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void run_check(const char* script, const fs::path& dir, const nlohmann::json& expect,
               const std::string& shots) {
  ASSERT_TRUE(fs::exists(kBrowserDir / "node_modules" / "playwright-core"))
      << "playwright-core is not installed: run scripts/setup.sh --oracle (npm ci in tests/browser)";
  ASSERT_TRUE(fs::exists("/usr/bin/chromium")) << "chromium is not installed: run scripts/setup.sh --oracle";
  write_bytes(dir / "expect.json", expect.dump(1));
  const fs::path shot_dir = fs::path(SAELAB_BINARY_DIR) / "test-screenshots" / shots;
  fs::create_directories(shot_dir);
  const auto r =
      run_command("node " + shell_quote((kBrowserDir / script).string()) + " " + shell_quote(dir.string()) +
                  " " + shell_quote(shot_dir.string()) + " " + shell_quote((dir / "expect.json").string()));
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace

TEST(ReportBrowser, IndexSearchSortAndFeatureHover) {
  FakeSource src(6);
  const std::int64_t d_sae = 40;
  const auto dir = build_report(src, d_sae, "browse");
  const auto table = read_data_script(dir / "data" / "latents.js");
  // The densest latent's top examples, with the display text of each example's own token.
  std::int64_t best = 0;
  for (const auto& row : table["rows"])
    if (row[1].get<std::int64_t>() > table["rows"][best][1].get<std::int64_t>()) best = row[0];
  const auto f = read_feature(dir, best, 16);
  auto top = nlohmann::json::array();
  for (const auto& e : f["top"]) {
    const auto tok =
        e["tokens"][e["pos"].get<std::int64_t>() - e["start"].get<std::int64_t>()].get<std::int32_t>();
    top.push_back({{"act", e["act"]}, {"text", display_text(src.decode({tok}))}});
  }
  // Searching "cat" keeps the latents with a top token whose text contains it.
  auto ids = nlohmann::json::array();
  for (const auto& row : table["rows"]) {
    bool hit = false;
    for (const auto& t : row[5])
      hit = hit || contains(lower(display_text(src.decode({t[0].get<std::int32_t>()}))), "cat");
    if (hit) ids.push_back(row[0]);
  }
  ASSERT_GT(ids.size(), 0u);
  ASSERT_LT(ids.size(), static_cast<std::size_t>(d_sae));
  run_check("report_check.mjs", dir,
            {{"rows", d_sae}, {"feature", best}, {"top", top}, {"search", "cat"}, {"search_ids", ids}},
            "report");
}

TEST(ReportBrowser, XssCorpusStaysText) {
  XssSource src;
  // Few examples per page: each window may hold the 100 KB token.
  const auto dir =
      build_report(src, 24, "xss", {{"top_k", std::int64_t(4)}, {"band_samples", std::int64_t(1)}});
  nlohmann::json expect_tokens = nlohmann::json::object();
  for (std::size_t id = 0; id < XssSource::tokens().size(); ++id)
    expect_tokens[std::to_string(id)] = display_text(XssSource::tokens()[id]);
  const auto table = read_data_script(dir / "data" / "latents.js");
  std::vector<std::pair<std::int64_t, std::int64_t>> by_count;
  for (const auto& row : table["rows"])
    by_count.push_back({-row[1].get<std::int64_t>(), row[0].get<std::int64_t>()});
  std::sort(by_count.begin(), by_count.end());
  auto features = nlohmann::json::array();
  for (int i = 0; i < 4; ++i) features.push_back(by_count[static_cast<std::size_t>(i)].second);
  run_check("xss_check.mjs", dir, {{"tokens", expect_tokens}, {"feature_ids", features}}, "xss");
}
