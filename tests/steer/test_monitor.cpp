// The monitor on the real SmolLM2-135M with the small SAE of the steer_run fixture: a phrase
// planted in State of the Union text (documents the harvest never saw) is found at every planted
// occurrence and nowhere else, by one latent picked for it on a calibration pass; the same holds
// when one long document is cut into overlapping windows; `saelab monitor` exits 3 when something
// fired and 0 when nothing did, and its peak memory stays flat on a 10x longer stream.
#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "saelab/core/fs_util.hpp"
#include "saelab/sae/apply.hpp"
#include "saelab/steer/monitor.hpp"
#include "steer_test_util.hpp"
#include "support/support.hpp"

namespace saelab {
namespace {

namespace fs = std::filesystem;
using test::steer_run;

const std::string kPhrase = " The quantum tardigrade sang in Esperanto.";

// Sentences of the last speeches of the corpus (the harvest read the first ones), grouped into
// documents of 40 to 90 tokens; every other one gets the phrase after its first sentence.
struct Planted {
  std::vector<std::string> docs;
  std::vector<bool> planted;
};

Planted make_docs(std::size_t n) {
  auto& in = steer_run();
  const std::string text = read_file(
      fs::path(SAELAB_SOURCE_DIR) / "data/corpus/sotu/2021_joseph_r_biden_d.txt", 1 << 24, "corpus");
  std::vector<std::string> sentences;
  std::size_t start = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i)
    if (text[i] == '.' && text[i + 1] == ' ') {
      sentences.push_back(text.substr(start, i + 1 - start));
      start = i + 1;
    }
  Planted p;
  std::string doc;
  for (std::size_t s = 0; s < sentences.size() && p.docs.size() < n; ++s) {
    if (doc.empty() && p.docs.size() % 2 == 1)
      doc = sentences[s].substr(sentences[s][0] == ' ' ? 1 : 0);
    else if (doc.empty())
      doc = sentences[s].substr(sentences[s][0] == ' ' ? 1 : 0) + kPhrase;
    else
      doc += sentences[s];
    if (in.source->tokenize(doc).size() >= 40) {
      if (in.source->tokenize(doc).size() <= 90) {
        p.docs.push_back(doc);
        p.planted.push_back(p.docs.size() % 2 == 1);
      }
      doc.clear();
    }
  }
  return p;
}

// Token spans [begin, end) of the phrase in `tokens`.
std::vector<std::pair<std::int64_t, std::int64_t>> phrase_spans(const std::vector<std::int32_t>& tokens) {
  const auto phrase = steer_run().source->tokenize(kPhrase);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::size_t i = 0; i + phrase.size() <= tokens.size(); ++i)
    if (std::equal(phrase.begin(), phrase.end(), tokens.begin() + static_cast<std::ptrdiff_t>(i)))
      out.push_back({static_cast<std::int64_t>(i), static_cast<std::int64_t>(i + phrase.size())});
  return out;
}

struct Choice {
  std::int64_t latent = -1;
  double threshold = 0, inside = 0, outside = 0;
};

// The latent whose weakest peak over the planted spans most exceeds its largest activation
// anywhere else (evaluated positions only), and the threshold halfway between.
Choice choose_latent(const Planted& p) {
  auto& in = steer_run();
  torch::NoGradGuard g;
  const auto d_sae = in.sae.sae->shape().d_sae;
  auto inside = at::full({d_sae}, 1e30f), outside = at::zeros({d_sae});
  for (const auto& doc : p.docs) {
    const auto ids = in.source->tokenize(doc);
    const auto x = in.source->run_with_hooks(test::tokens_of(ids), {in.hook}).at(in.hook)[0];
    auto f = encode_sae(*in.sae.sae, x, 1.0);  // [T, d_sae]
    const auto first = in.rows.first_position;
    std::vector<bool> in_span(ids.size(), false);
    for (auto [b, e] : phrase_spans(ids)) {
      inside = at::minimum(inside, std::get<0>(f.slice(0, b, e).max(0)));
      for (auto i = b; i < e; ++i) in_span[static_cast<std::size_t>(i)] = true;
    }
    for (std::size_t i = static_cast<std::size_t>(first); i < ids.size(); ++i)
      if (!in_span[i]) outside = at::maximum(outside, f[static_cast<std::int64_t>(i)]);
  }
  const auto gap = inside - outside;
  Choice c;
  c.latent = gap.argmax().item<std::int64_t>();
  c.inside = inside[c.latent].item<double>();
  c.outside = outside[c.latent].item<double>();
  c.threshold = (c.inside + c.outside) / 2;
  std::printf("  latent %lld: weakest planted peak %.3f, strongest elsewhere %.3f, threshold %.3f\n",
              static_cast<long long>(c.latent), c.inside, c.outside, c.threshold);
  return c;
}

const Planted& planted() {
  static const Planted p = make_docs(40);
  return p;
}
const Choice& choice() {
  static const Choice c = choose_latent(planted());
  return c;
}

MonitorOptions options(std::int64_t window) {
  auto& in = steer_run();
  MonitorOptions o;
  o.window = window;
  o.skip = in.rows.first_position;
  o.excluded_tokens = in.rows.excluded_tokens;
  o.prepend_bos = in.prepend_bos;
  return o;
}

// Every hit's (document, position) from the monitor's lines.
std::set<std::pair<std::int64_t, std::int64_t>> run_monitor(const std::vector<std::string>& docs,
                                                            std::int64_t window,
                                                            std::int64_t* fired_docs = nullptr) {
  auto& in = steer_run();
  std::set<std::pair<std::int64_t, std::int64_t>> hits;
  std::set<std::int64_t> docs_fired;
  Monitor m(*in.source, *in.sae.sae, in.hook, {{choice().latent, choice().threshold, "test"}},
            options(window), [&](const nlohmann::json& line) {
              for (const auto& f : line["fired"])
                for (const auto& h : f["hits"])
                  hits.insert({line["doc"].get<std::int64_t>(), h["pos"].get<std::int64_t>()});
              docs_fired.insert(line["doc"].get<std::int64_t>());
            });
  for (std::size_t i = 0; i < docs.size(); ++i) m.add({static_cast<std::int64_t>(i), docs[i], false});
  m.flush();
  if (fired_docs) *fired_docs = static_cast<std::int64_t>(docs_fired.size());
  return hits;
}

TEST(Monitor, FindsEveryPlantedPhraseAndNothingElse) {
  const Planted& p = planted();
  ASSERT_GE(p.docs.size(), 30u);
  ASSERT_GT(choice().inside, choice().outside) << "no latent separates the planted phrase from the rest";
  std::int64_t fired = 0;
  const auto hits = run_monitor(p.docs, 128, &fired);
  auto& in = steer_run();
  std::int64_t spans = 0;
  for (std::size_t d = 0; d < p.docs.size(); ++d) {
    const auto sp = phrase_spans(in.source->tokenize(p.docs[d]));
    EXPECT_EQ(sp.size(), p.planted[d] ? 1u : 0u) << "document " << d;
    spans += static_cast<std::int64_t>(sp.size());
    for (auto [b, e] : sp) {
      bool found = false;
      for (auto i = b; i < e; ++i) found = found || hits.count({static_cast<std::int64_t>(d), i});
      EXPECT_TRUE(found) << "the phrase in document " << d << " at tokens " << b << ".." << e
                         << " was missed";
    }
    for (const auto& [hd, pos] : hits) {
      if (hd != static_cast<std::int64_t>(d)) continue;
      bool inside = false;
      for (auto [b, e] : sp) inside = inside || (pos >= b && pos < e);
      EXPECT_TRUE(inside) << "a hit outside the phrase: document " << d << " token " << pos;
    }
  }
  std::printf("  %zu documents, %lld planted phrases: %zu hits in %lld documents\n", p.docs.size(),
              static_cast<long long>(spans), hits.size(), static_cast<long long>(fired));
  EXPECT_EQ(fired, spans);
}

TEST(Monitor, OverlappingWindowsOfOneLongDocumentFindTheSame) {
  const Planted& p = planted();
  std::string all;
  for (const auto& d : p.docs) all += d + " ";
  auto& in = steer_run();
  const auto ids = in.source->tokenize(all);
  const auto spans = phrase_spans(ids);
  ASSERT_GE(spans.size(), 15u);
  const auto hits = run_monitor({all}, 64);  // windows of 64 tokens overlapping by the skipped 3
  std::int64_t found = 0;
  for (auto [b, e] : spans) {
    bool f = false;
    for (auto i = b; i < e; ++i) f = f || hits.count({0, i});
    found += f;
  }
  std::int64_t outside = 0;
  for (const auto& [d, pos] : hits) {
    bool inside = false;
    for (auto [b, e] : spans) inside = inside || (pos >= b && pos < e);
    outside += !inside;
  }
  std::printf(
      "  one document of %zu tokens in 64-token windows: %lld of %zu phrases found, %lld hits elsewhere\n",
      ids.size(), static_cast<long long>(found), spans.size(), static_cast<long long>(outside));
  // A phrase cut by a window boundary loses its left context, so it may be missed; the ones whole
  // inside a window are found, and nothing else fires.
  std::int64_t whole = 0;
  for (auto [b, e] : spans) {
    const auto k = (b - 3) / 61;  // window stride 64 - 3
    whole += (e <= k * 61 + 64);
  }
  EXPECT_GE(found, whole - 1);
  EXPECT_EQ(outside, 0);
}

struct CliRun {
  int exit_code = -1;
  double peak_mib = 0;
  std::int64_t lines = 0;
  std::string log;
};

CliRun monitor_cli(const fs::path& input, const std::string& watch) {
  const fs::path out = input.string() + ".out.jsonl";
  const auto r = test::run_command(std::string(SAELAB_EXE) + " monitor " +
                                   test::shell_quote(test::steer_run_dir().string()) + " --watch " + watch +
                                   " --input " + test::shell_quote(input.string()) + " --output " +
                                   test::shell_quote(out.string()) + " 2>&1");
  CliRun c{r.exit_code, 0, 0, r.output};
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex("peak memory ([0-9.]+) MiB"))) c.peak_mib = std::stod(m[1]);
  std::ifstream f(out);
  for (std::string line; std::getline(f, line);) ++c.lines;
  return c;
}

TEST(Monitor, CliExitCodesAndFlatMemoryOnATenTimesLongerStream) {
  const Planted& p = planted();
  test::TempDir dir("monitor-cli");
  auto write_stream = [&](const std::string& name, int copies, bool with_phrase) {
    std::ofstream f(dir / name);
    for (int c = 0; c < copies; ++c)
      for (std::size_t d = 0; d < p.docs.size(); ++d)
        if (with_phrase || !p.planted[d]) f << p.docs[d] << "\n\n";
    return dir / name;
  };
  const std::string watch = std::to_string(choice().latent) + ":" + std::to_string(choice().threshold);
  const auto clean = monitor_cli(write_stream("clean.txt", 1, false), watch);
  EXPECT_EQ(clean.exit_code, 0) << clean.log;
  EXPECT_EQ(clean.lines, 0);
  const auto one = monitor_cli(write_stream("x1.txt", 1, true), watch);
  const auto ten = monitor_cli(write_stream("x10.txt", 10, true), watch);
  std::printf("  stream x1: exit %d, %lld lines, peak %.0f MiB; x10: exit %d, %lld lines, peak %.0f MiB\n%s",
              one.exit_code, static_cast<long long>(one.lines), one.peak_mib, ten.exit_code,
              static_cast<long long>(ten.lines), ten.peak_mib, ten.log.c_str());
  EXPECT_EQ(one.exit_code, 3) << one.log;
  EXPECT_EQ(ten.exit_code, 3);
  EXPECT_EQ(ten.lines, 10 * one.lines);
  ASSERT_GT(one.peak_mib, 0);
  EXPECT_LE(ten.peak_mib, one.peak_mib * 1.10) << "memory grew with the stream's length";
  // JSONL from stdin: ids echoed, one line per planted document, a malformed record skipped.
  {
    std::ofstream f(dir / "in.jsonl");
    f << "not json\n";
    for (std::size_t d = 0; d < p.docs.size(); ++d)
      f << nlohmann::json{{"id", "doc-" + std::to_string(d)}, {"text", p.docs[d]}}.dump() << "\n";
  }
  const auto r = test::run_command(
      "cat " + test::shell_quote((dir / "in.jsonl").string()) + " | " + SAELAB_EXE + " monitor " +
      test::shell_quote(test::steer_run_dir().string()) + " --watch " + watch + " --format jsonl --output " +
      test::shell_quote((dir / "stdin.jsonl").string()));
  EXPECT_EQ(r.exit_code, 3);
  std::int64_t n = 0;
  std::istringstream lines(test::read_bytes(dir / "stdin.jsonl"));
  for (std::string line; std::getline(lines, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    const auto d = std::stoul(j["doc"].get<std::string>().substr(4));
    EXPECT_TRUE(p.planted.at(d)) << line;
  }
  EXPECT_EQ(n, one.lines);
  EXPECT_TRUE(test::contains(r.output, "stdin:1: not valid JSON; skipped")) << r.output;
  // Quantile thresholds from the run's stored rows, and the errors.
  const auto q = monitor_cli(write_stream("q.txt", 1, true), std::to_string(choice().latent) + ":q0.9999");
  EXPECT_TRUE(test::contains(q.log, "reference rows")) << q.log;
  const auto bad = monitor_cli(dir / "x1.txt", "99999");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(test::contains(bad.log, "the SAE has latents 0 to 1023")) << bad.log;
}

}  // namespace
}  // namespace saelab
