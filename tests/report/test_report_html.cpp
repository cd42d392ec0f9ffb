// Reporter "html": the report directory holds every latent, its statistics equal a brute force
// over the scanned tokens, the store scan sees what the token scan sees, untrusted text cannot
// escape its JSON, and an interrupted or failed run never damages an existing report.
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "fakes.hpp"
#include "plugins.hpp"
#include "report_files.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/features/collector.hpp"
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

fs::path run_report(ActivationSource* src, SaeArchitecture& sae, const std::string& corpus,
                    const std::map<std::string, OptionValue>& opts, const std::string& name = "report",
                    const char* hook = kResidHook, ActivationReader* reader = nullptr,
                    const fs::path& run_dir = {}) {
  std::unique_ptr<TokenBatches> tokens;
  if (src) tokens = std::make_unique<TokenBatches>(corpus_config(corpus), *src);
  const auto dir = fs::path(corpus).parent_path() / name;
  ReportContext ctx{sae, src, hook, tokens.get(), reader,     nlohmann::json(),
                    dir, 1.0, {},   run_dir,      "seed: 1\n"};
  make_plugin<Reporter>("html", opts, 11)->write(ctx);
  return dir;
}

// Every activation of the first `seqs` sequences: [seqs * kContext, d_sae]; BOS rows excluded.
struct Truth {
  torch::Tensor tokens, latents, include;
};

Truth truth(FakeSource& src, SaeArchitecture& sae, const std::string& corpus, std::int64_t seqs) {
  torch::NoGradGuard ng;
  TokenBatches tb(corpus_config(corpus), src);
  Truth t;
  t.tokens = tb.next(seqs);
  t.latents = sae.encode(src.activations(t.tokens).reshape({-1, kD}));
  t.include = t.tokens.reshape({-1}).ne(0);
  return t;
}

struct Act {
  float act;
  std::int64_t seq, pos;
};

std::vector<Act> ranked(const Truth& t, std::int64_t j) {
  std::vector<Act> v;
  const auto col = t.latents.select(1, j).contiguous();
  for (std::int64_t r = 0; r < col.size(0); ++r) {
    const float a = col[r].item<float>();
    if (t.include[r].item<bool>() && a > 0) v.push_back({a, r / kContext, r % kContext});
  }
  std::sort(v.begin(), v.end(), [](const Act& a, const Act& b) {
    return a.act != b.act ? a.act > b.act : a.seq != b.seq ? a.seq < b.seq : a.pos < b.pos;
  });
  return v;
}

}  // namespace

TEST(ReportHtml, EveryLatentEqualsBruteForce) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  // 150 evaluated tokens: 10 sequences of 15 (BOS excluded).
  const auto dir = run_report(&src, *sae, corpus,
                              {{"tokens", std::int64_t(150)},
                               {"top_k", std::int64_t(6)},
                               {"batch_size", std::int64_t(3)},
                               {"chunk_size", std::int64_t(8)}});
  const auto t = truth(src, *sae, corpus, 10);
  const auto summary = read_data_script(dir / "data" / "summary.js");
  EXPECT_EQ(summary["tokens"], 150);
  EXPECT_EQ(summary["d_sae"], 20);
  const auto table = read_data_script(dir / "data" / "latents.js");
  ASSERT_EQ(table["rows"].size(), 20u);
  double max_diff = 0;
  for (std::int64_t j = 0; j < 20; ++j) {
    const auto f = read_feature(dir, j, 8);
    const auto all = ranked(t, j);
    EXPECT_EQ(f["count"].get<std::int64_t>(), static_cast<std::int64_t>(all.size())) << "latent " << j;
    EXPECT_EQ(table["rows"][j][1], f["count"]);
    const std::size_t k = std::min<std::size_t>(6, all.size());
    ASSERT_EQ(f["top"].size(), k) << "latent " << j;
    for (std::size_t r = 0; r < k; ++r) {
      const auto& e = f["top"][r];
      max_diff =
          std::max(max_diff, std::fabs(e["act"].get<double>() - all[r].act) / std::max(1.0f, all[r].act));
      EXPECT_EQ(e["seq"].get<std::int64_t>(), all[r].seq) << "latent " << j << " rank " << r;
      EXPECT_EQ(e["pos"].get<std::int64_t>(), all[r].pos) << "latent " << j << " rank " << r;
      const auto at = static_cast<std::size_t>(e["pos"].get<std::int64_t>() - e["start"].get<std::int64_t>());
      EXPECT_EQ(e["tokens"][at].get<std::int64_t>(), t.tokens[all[r].seq][all[r].pos].item<std::int64_t>());
      EXPECT_EQ(e["acts"][at], e["act"]);
    }
    std::int64_t hist = 0;
    for (const auto& c : f["histogram"]["counts"]) hist += c.get<std::int64_t>();
    EXPECT_EQ(hist, static_cast<std::int64_t>(all.size()));
    EXPECT_EQ(f["neighbours"].size(), 5u);
    EXPECT_EQ(f["logits"]["top"].size(), 10u);
  }
  std::printf("report top-k vs brute force over 150 tokens, 20 latents: max relative |act diff| %.3g\n",
              max_diff);
  EXPECT_LT(max_diff, 1e-4);  // five significant digits are stored
}

TEST(ReportHtml, PagesAreStrictAndDataCannotBreakOut) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(2000));
  const auto dir = run_report(&src, *sae, corpus, {{"tokens", std::int64_t(100)}});
  for (const char* page : {"index.html", "feature.html"}) {
    const auto h = read_bytes(dir / page);
    EXPECT_TRUE(contains(h, "script-src 'self'")) << page;
    EXPECT_FALSE(contains(h, "unsafe-inline")) << page;
    EXPECT_FALSE(contains(h, "http://") || contains(h, "https://")) << page;
    EXPECT_FALSE(contains(h, "<script>")) << page << ": inline script";
  }
  // Token 1 decodes to "<script>alert(1)</script>": in the data it is escaped, never raw.
  for (const auto& e : fs::recursive_directory_iterator(dir / "data")) {
    if (!e.is_regular_file()) continue;
    const auto s = read_bytes(e.path());
    EXPECT_EQ(s.find('<'), std::string::npos) << e.path();
    EXPECT_EQ(s.find("\u2028"), std::string::npos) << e.path();
  }
  const auto vocab = read_data_script(dir / "data" / "vocab.js");
  ASSERT_EQ(vocab.size(), static_cast<std::size_t>(src.info().vocab_size));
  EXPECT_EQ(vocab[1], "<script>alert(1)</script>");
  EXPECT_EQ(vocab[6].dump(), R"(["","\\xE2\\x82"])");  // half a UTF-8 character
  EXPECT_EQ(vocab[7].dump(), R"(["","[U+202E]","evil"])");
  EXPECT_TRUE(fs::exists(dir / "figures" / "density.svg"));
  EXPECT_TRUE(fs::exists(dir / "assets" / "feature.js"));
}

TEST(ReportHtml, StoredRowsGiveTheSameStatisticsWithoutAModel) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  TokenBatches tb(corpus_config(corpus), src);
  const auto tokens = tb.next(6);
  const auto keep = tokens.reshape({-1}).ne(0).nonzero().squeeze(1);  // stores leave BOS out
  const std::int64_t n = tokens.numel();
  ActivationRows rows{
      src.activations(tokens).reshape({-1, kD}).index_select(0, keep),
      tokens.reshape({-1}).index_select(0, keep).to(torch::kInt32),
      torch::arange(n, torch::kInt64).div(kContext, "floor").index_select(0, keep),
      torch::arange(n, torch::kInt64).remainder(kContext).index_select(0, keep).to(torch::kInt32)};
  FakeReader reader(rows, 25);  // batches cut sequences apart
  const auto stored =
      run_report(nullptr, *sae, corpus, {{"input", std::string("store")}}, "stored", kResidHook, &reader);
  const auto scanned = run_report(&src, *sae, corpus, {{"tokens", std::int64_t(90)}}, "scanned");
  // The same examples; only their windows differ, a store holding no BOS row to show.
  auto where = [](const nlohmann::json& examples) {
    auto out = nlohmann::json::array();
    for (const auto& e : examples) out.push_back({e["act"], e["seq"], e["pos"]});
    return out;
  };
  for (std::int64_t j = 0; j < 20; ++j) {
    const auto a = read_feature(stored, j), b = read_feature(scanned, j);
    EXPECT_EQ(a["count"], b["count"]) << j;
    EXPECT_EQ(a["histogram"], b["histogram"]) << j;
    EXPECT_EQ(where(a["top"]), where(b["top"])) << j;
    ASSERT_EQ(a["bands"].size(), b["bands"].size()) << j;
    for (std::size_t i = 0; i < a["bands"].size(); ++i) {
      EXPECT_EQ(a["bands"][i]["count"], b["bands"][i]["count"]) << j;
      EXPECT_EQ(where(a["bands"][i]["samples"]), where(b["bands"][i]["samples"])) << j;
    }
    EXPECT_TRUE(a["logits"].contains("unavailable"));
  }
  EXPECT_TRUE(contains(read_data_script(stored / "data" / "summary.js")["scan"], "no forward pass"));
}

TEST(ReportHtml, NonResidualHookHasNoLogitEffects) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(1500));
  const auto dir = run_report(&src, *sae, corpus, {{"tokens", std::int64_t(50)}}, "report", kAttnHook);
  const auto f = read_feature(dir, 0);
  EXPECT_TRUE(contains(f["logits"]["unavailable"].get<std::string>(), "residual stream"));
}

TEST(ReportHtml, AFailedOrInterruptedRunKeepsTheFinishedReport) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(1500));
  const auto dir = run_report(&src, *sae, corpus, {{"tokens", std::int64_t(50)}});
  const auto before = read_bytes(dir / "data" / "latents.js");
  // A run that fails (an SAE of the wrong width) leaves the report as it was.
  auto wrong = random_sae(kD + 1, 20, 7);
  const auto msg = error_of([&] { run_report(&src, *wrong, corpus, {{"tokens", std::int64_t(50)}}); });
  EXPECT_TRUE(contains(msg, "d_in")) << msg;
  EXPECT_EQ(read_bytes(dir / "data" / "latents.js"), before);
  // What a killed run left (a partial directory) is cleared, and the new report replaces the old.
  write_bytes(fs::path(dir.string() + ".partial") / "data" / "junk.js", "half");
  write_bytes(dir / "stale.txt", "from the old report");
  run_report(&src, *sae, corpus, {{"tokens", std::int64_t(80)}});
  EXPECT_FALSE(fs::exists(dir / "stale.txt"));
  EXPECT_FALSE(fs::exists(fs::path(dir.string() + ".partial")));
  EXPECT_FALSE(fs::exists(fs::path(dir.string() + ".old")));
  EXPECT_NE(read_bytes(dir / "data" / "latents.js"), before);
}

TEST(ReportHtml, OptionErrorsNameTheOption) {
  const auto msg = error_of([] { make_plugin<Reporter>("html", {{"histogram_bins", std::int64_t(7)}}); });
  EXPECT_TRUE(contains(msg, "histogram_bins")) << msg;
  EXPECT_TRUE(contains(msg, "even")) << msg;
  EXPECT_THROW(make_plugin<Reporter>("html", {{"input", std::string("disk")}}), ConfigError);
}

TEST(ReportHtml, LargeDictionaryWritesEveryLatent) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 24576, 9);
  auto corpus = write_corpus("c.txt", corpus_text(3000));
  const auto dir =
      run_report(&src, *sae, corpus, {{"tokens", std::int64_t(300)}, {"neighbours", std::int64_t(3)}});
  EXPECT_EQ(read_data_script(dir / "data" / "latents.js")["rows"].size(), 24576u);
  EXPECT_TRUE(fs::exists(dir / "data" / "features" / "0383.js"));
  EXPECT_EQ(read_feature(dir, 24575)["id"], 24575);
}

TEST(ReportHtml, FiguresForPapersAsSvgAndPng) {
  FakeSource src(kD);
  auto sae = random_sae(kD, 20, 7);
  auto corpus = write_corpus("c.txt", corpus_text(1500));
  const fs::path run = fs::path(corpus).parent_path() / "run";
  std::string lines = "{\"event\": \"start\"}\nnot json\n";
  for (int step = 0; step < 5; ++step)
    lines += "{\"step\": " + std::to_string(step * 10) +
             ", \"tokens\": 1, \"loss\": " + std::to_string(1.0 / (step + 1)) +
             ", \"l0\": 7, \"elapsed_s\": 3}\n";
  write_bytes(run / "metrics.jsonl", lines);
  const auto dir = run_report(&src, *sae, corpus,
                              {{"tokens", std::int64_t(80)}, {"png", true}, {"png_latents", std::int64_t(3)}},
                              "report", kResidHook, nullptr, run);
  for (const char* f : {"density.svg", "density.png", "train-loss.svg", "train-loss.png", "train-l0.png"}) {
    ASSERT_TRUE(fs::exists(dir / "figures" / f)) << f;
    if (std::string(f).find(".png") != std::string::npos)
      EXPECT_EQ(read_bytes(dir / "figures" / f).substr(1, 3), "PNG") << f;
  }
  int latent_pngs = 0;
  for (const auto& e : fs::directory_iterator(dir / "figures"))
    latent_pngs += e.path().filename().string().rfind("latent-", 0) == 0;
  EXPECT_EQ(latent_pngs, 3);
  const auto summary = read_data_script(dir / "data" / "summary.js");
  std::vector<std::string> files;
  for (const auto& f : summary["figures"]) files.push_back(f["file"]);
  EXPECT_EQ(files, (std::vector<std::string>{"figures/density.svg", "figures/train-loss.svg",
                                             "figures/train-l0.svg"}));
  EXPECT_EQ(summary["config"], "seed: 1\n");
}
