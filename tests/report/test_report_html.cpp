// Reporter "html": the page exists, shows the requested latents, its top-k equals a brute-force
// top-k, untrusted token text is escaped, and nothing is loaded from the network.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "fakes.hpp"
#include "latent_collect.hpp"
#include "plugins.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "saelab/interfaces/reporter.hpp"
#include "support/support.hpp"

using namespace saelab;
using namespace saelab::test;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kD = 6;
constexpr std::int64_t kContext = 16;

CorpusConfig corpus_config(const std::string& path) {
  CorpusConfig c;
  c.paths = {path};
  c.format = "text";
  c.context_size = kContext;
  return c;
}

fs::path out_dir(const std::string& corpus_path, const std::string& name) {
  return fs::path(corpus_path).parent_path() / name;
}

struct Run {
  std::string html;
  nlohmann::json data;
};

Run run_report(FakeSource* src, SaeArchitecture& sae, const std::string& corpus,
               const std::map<std::string, OptionValue>& opts, const std::string& name = "report",
               const char* hook = kResidHook, ActivationReader* reader = nullptr,
               nlohmann::json eval = nlohmann::json()) {
  std::unique_ptr<TokenBatches> tokens;
  if (src && !reader) tokens = std::make_unique<TokenBatches>(corpus_config(corpus), *src);
  auto dir = out_dir(corpus, name);
  ReportContext ctx{sae, src, hook, tokens.get(), reader, std::move(eval), dir, 1.0, {}};
  make_plugin<Reporter>("html", opts, 11)->write(ctx);
  return {test::read_bytes(dir / "index.html"),
          nlohmann::json::parse(test::read_bytes(dir / "latents.json"))};
}

// All activations of the scanned sequences, with BOS positions left out.
struct Truth {
  torch::Tensor tokens;   // [n, s]
  torch::Tensor latents;  // [n * s, d_sae]
  torch::Tensor include;  // [n * s]
};

Truth truth(FakeSource& src, TestSae& sae, const std::string& corpus, std::int64_t seqs) {
  torch::NoGradGuard ng;
  TokenBatches tb(corpus_config(corpus), src);
  Truth t;
  t.tokens = tb.next(seqs);
  t.latents = sae.encode(src.activations(t.tokens).reshape({-1, kD}));
  t.include = t.tokens.reshape({-1}).ne(0);
  return t;
}

// Brute force: every non-zero activation of latent j, sorted as the report ranks them.
std::vector<report::Example> all_examples(const Truth& t, std::int64_t j) {
  std::vector<report::Example> v;
  auto col = t.latents.select(1, j).contiguous();
  for (std::int64_t r = 0; r < col.size(0); ++r) {
    const float a = col[r].item<float>();
    if (!t.include[r].item<bool>() || a == 0.0f) continue;
    report::Example e;
    e.act = a;
    e.seq = r / kContext;
    e.pos = r % kContext;
    v.push_back(e);
  }
  std::sort(v.begin(), v.end(), report::ranks_before);
  return v;
}

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::size_t occurrences(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(ReportHtml, RequestedLatentsWithBruteForceTopK) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  const std::vector<std::string> ids = {"3", "7", "0", "11"};
  auto run = run_report(&src, *sae, corpus,
                        {{"selection", std::string("list")},
                         {"latent_ids", ids},
                         {"top_k", std::int64_t(6)},
                         {"batches", std::int64_t(3)},
                         {"batch_size", std::int64_t(4)}});
  auto t = truth(src, *sae, corpus, 12);
  ASSERT_EQ(run.data["latents"].size(), ids.size());
  double max_diff = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto j = std::stoll(ids[i]);
    const auto& L = run.data["latents"][i];
    EXPECT_EQ(L["latent"], j);
    EXPECT_NE(run.html.find("id=\"latent-" + ids[i] + "\""), std::string::npos);
    auto all = all_examples(t, j);
    EXPECT_EQ(L["fire_count"].get<std::int64_t>(), static_cast<std::int64_t>(all.size()));
    const std::size_t k = std::min<std::size_t>(6, all.size());
    ASSERT_EQ(L["top"].size(), k) << "latent " << j;
    for (std::size_t r = 0; r < k; ++r) {
      max_diff = std::max(max_diff, std::fabs(L["top"][r]["act"].get<double>() - all[r].act));
      EXPECT_EQ(L["top"][r]["seq"].get<std::int64_t>(), all[r].seq) << "latent " << j << " rank " << r;
      EXPECT_EQ(L["top"][r]["pos"].get<std::int64_t>(), all[r].pos) << "latent " << j << " rank " << r;
    }
    // Every non-zero activation is in exactly one histogram bin and one interval.
    std::int64_t hist = 0, bands = 0;
    for (const auto& c : L["histogram"]["counts"]) hist += c.get<std::int64_t>();
    for (const auto& b : L["bands"]) {
      bands += b["count"].get<std::int64_t>();
      for (const auto& s : b["samples"]) {
        EXPECT_GT(s["act"].get<double>(), b["lo"].get<double>() - 1e-6);
        EXPECT_LE(s["act"].get<double>(), b["hi"].get<double>() + 1e-6);
      }
    }
    EXPECT_EQ(hist, static_cast<std::int64_t>(all.size()));
    EXPECT_EQ(bands, static_cast<std::int64_t>(all.size()));
    if (!all.empty()) {
      EXPECT_NEAR(L["max_activation"].get<double>(), all.front().act, 1e-6);
    }
    EXPECT_TRUE(L["logit_effects"]["available"].get<bool>());
  }
  std::printf("top-k vs brute force over %lld tokens: max |act diff| %.3g\n",
              static_cast<long long>(t.include.sum().item<std::int64_t>()), max_diff);
  EXPECT_LT(max_diff, 1e-5);
}

TEST(ReportHtml, UntrustedTokenTextIsEscapedAndPageIsOffline) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  auto run = run_report(&src, *sae, corpus, {{"latents", std::int64_t(4)}, {"batches", std::int64_t(2)}});
  const auto& h = run.html;
  // Token 1 decodes to "<script>alert(1)</script>": only escaped copies may appear.
  EXPECT_EQ(h.find("<script>alert"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(occurrences(h, "<script"), 1u);        // the page's own filter script
  EXPECT_EQ(h.find("\u202E"), std::string::npos);  // the bidi override is shown as a marker
  EXPECT_NE(h.find("[U+202E]"), std::string::npos);
  EXPECT_TRUE(valid_utf8(h));  // token 6 is half a UTF-8 character
  EXPECT_NE(h.find("\\xE2\\x82"), std::string::npos);
  EXPECT_EQ(h.find("http://"), std::string::npos);
  EXPECT_EQ(h.find("https://"), std::string::npos);
  EXPECT_EQ(h.find("src="), std::string::npos);  // no external scripts or images
  EXPECT_EQ(h.find("<link"), std::string::npos);
  EXPECT_NE(h.find("Content-Security-Policy"), std::string::npos);
}

TEST(ReportHtml, MostActiveSelectsTheMostFrequentLatents) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  auto run = run_report(&src, *sae, corpus, {{"latents", std::int64_t(5)}, {"batches", std::int64_t(2)}});
  auto t = truth(src, *sae, corpus, 16);
  std::vector<std::pair<std::int64_t, std::int64_t>> by_count;  // (-count, id)
  for (std::int64_t j = 0; j < 20; ++j)
    by_count.push_back({-static_cast<std::int64_t>(all_examples(t, j).size()), j});
  std::sort(by_count.begin(), by_count.end());
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(run.data["latents"][i]["latent"].get<std::int64_t>(), by_count[i].second);
    EXPECT_EQ(run.data["latents"][i]["fire_count"].get<std::int64_t>(), -by_count[i].first);
  }
}

TEST(ReportHtml, RecomputingActivationsEqualsCachingThem) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  std::map<std::string, OptionValue> opts = {{"latents", std::int64_t(6)}, {"batches", std::int64_t(3)}};
  auto cached = run_report(&src, *sae, corpus, opts, "cached");
  opts["activation_cache_mb"] = std::int64_t(0);
  auto recomputed = run_report(&src, *sae, corpus, opts, "recomputed");
  EXPECT_EQ(cached.data, recomputed.data);
}

TEST(ReportHtml, StoredRowsWithoutAModel) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  auto t = truth(src, *sae, corpus, 6);
  TokenBatches tb(corpus_config(corpus), src);
  auto tokens = tb.next(6);
  auto keep = tokens.reshape({-1}).ne(0).nonzero().squeeze(1);  // stores leave BOS out
  const std::int64_t n = tokens.numel();
  ActivationRows rows{
      src.activations(tokens).reshape({-1, kD}).index_select(0, keep),
      tokens.reshape({-1}).index_select(0, keep).to(torch::kInt32),
      torch::arange(n, torch::kInt64).div(kContext, "floor").index_select(0, keep),
      torch::arange(n, torch::kInt64).remainder(kContext).index_select(0, keep).to(torch::kInt32)};
  FakeReader reader(rows, 25);
  auto run = run_report(nullptr, *sae, corpus,
                        {{"selection", std::string("list")},
                         {"latent_ids", std::vector<std::string>{"3"}},
                         {"top_k", std::int64_t(5)},
                         {"batches", std::int64_t(100)}},
                        "stored", kResidHook, &reader);
  const auto& L = run.data["latents"][0];
  auto all = all_examples(t, 3);
  EXPECT_EQ(L["fire_count"].get<std::int64_t>(), static_cast<std::int64_t>(all.size()));
  for (std::size_t r = 0; r < std::min<std::size_t>(5, all.size()); ++r) {
    EXPECT_NEAR(L["top"][r]["act"].get<double>(), all[r].act, 1e-5);
    EXPECT_EQ(L["top"][r]["seq"].get<std::int64_t>(), all[r].seq);
    EXPECT_EQ(L["top"][r]["pos"].get<std::int64_t>(), all[r].pos);
  }
  EXPECT_FALSE(L["logit_effects"]["available"].get<bool>());
  EXPECT_NE(run.html.find('#'), std::string::npos);
  EXPECT_NE(run.html.find("id=\"latent-3\""), std::string::npos);
}

TEST(ReportHtml, NonResidualHookHasNoLogitEffects) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(1500));
  auto run = run_report(&src, *sae, corpus, {{"latents", std::int64_t(2)}, {"batches", std::int64_t(1)}},
                        "report", kAttnHook);
  const auto& g = run.data["latents"][0]["logit_effects"];
  EXPECT_FALSE(g["available"].get<bool>());
  EXPECT_NE(g["reason"].get<std::string>().find("residual stream"), std::string::npos);
}

TEST(ReportHtml, ListedLatentOutOfRangeNamesTheOptionAndTheRange) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(500));
  try {
    run_report(&src, *sae, corpus,
               {{"selection", std::string("list")}, {"latent_ids", std::vector<std::string>{"4", "20"}}});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("test.yaml:7:3"), std::string::npos) << m;
    EXPECT_NE(m.find("latent_ids"), std::string::npos) << m;
    EXPECT_NE(m.find("latent 20"), std::string::npos) << m;
    EXPECT_NE(m.find("d_sae = 20"), std::string::npos) << m;
  }
  EXPECT_THROW(make_plugin<Reporter>("html", {{"latent_ids", std::vector<std::string>{"x1"}}}), ConfigError);
  EXPECT_THROW(make_plugin<Reporter>("html", {{"selection", std::string("list")}}), ConfigError);
}

TEST(ReportHtml, LargeDictionary) {
  // GPT-2 small SAEs have d_sae = 24576: the scan keeps O(d_sae) counters, not O(d_sae · tokens).
  FakeSource src(kD);
  auto sae = random_sae(kD, 24576, 9);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  const auto t0 = std::chrono::steady_clock::now();
  auto run = run_report(&src, *sae, corpus, {{"latents", std::int64_t(4)}, {"batches", std::int64_t(4)}});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("d_sae 24576: %zu latents reported in %.2f s\n", run.data["latents"].size(), s);
  EXPECT_EQ(run.data["latents"].size(), 4u);
  EXPECT_EQ(run.data["d_sae"], 24576);
}

TEST(ReportHtml, RendersInHeadlessChromium) {
  // Needs the Debian package chromium, which `scripts/setup.sh --oracle` installs with the other
  // test-only tools. The page of an evaluate -> report pipeline must parse into the expected
  // sections.
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
  std::string browser;
  for (auto* c : candidates)
    if (fs::exists(c)) browser = c;
  ASSERT_FALSE(browser.empty()) << "chromium is not installed: run scripts/setup.sh --oracle (or apt-get "
                                   "install chromium)";
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  nlohmann::json eval;
  {
    TokenBatches held_out(corpus_config(corpus), src);
    EvalContext ectx{*sae, &src, kResidHook, &held_out, nullptr, 1.0, {}};
    eval = make_plugin<Evaluator>("standard", {{"batches", std::int64_t(2)}})->evaluate(ectx);
  }
  run_report(&src, *sae, corpus, {{"latents", std::int64_t(3)}, {"batches", std::int64_t(2)}}, "report",
             kResidHook, nullptr, eval);
  const auto dir = out_dir(corpus, "report");
  const auto dom = dir / "dom.html";
  const std::string cmd = browser +
                          " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                          " --disable-background-networking --disable-component-update --disable-sync"
                          " --user-data-dir='" +
                          (dir / "chromium-profile").string() +
                          "' "
                          "--dump-dom 'file://" +
                          (dir / "index.html").string() + "' > '" + dom.string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto parsed = test::read_bytes(dom);
  EXPECT_GE(occurrences(parsed, "class=\"latent card\""), 3u);
  EXPECT_EQ(parsed.find("<script>alert"), std::string::npos);
  EXPECT_NE(parsed.find("<svg"), std::string::npos);
  EXPECT_NE(parsed.find("Explained variance"), std::string::npos);
  EXPECT_NE(parsed.find("CE loss score"), std::string::npos);
}
