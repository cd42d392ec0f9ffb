// The parts of steering and monitoring that need no model: the spec languages and their errors,
// nearest-rank quantiles (hand-computed), which positions an edit touches, .npy parsing of
// untrusted headers, and the document stream's cuts.
#include <sstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/steer/direction_file.hpp"
#include "saelab/steer/monitor.hpp"
#include "saelab/steer/steering.hpp"
#include "support/support.hpp"

namespace saelab {
namespace {

using test::contains;
using test::error_of;

TEST(SteerSpec, ParsesEveryForm) {
  auto a = parse_feature_steer("123:+8");
  EXPECT_EQ(a.latent, 123);
  EXPECT_EQ(a.kind, FeatureSteer::Kind::Add);
  EXPECT_EQ(a.value, 8.0);
  EXPECT_FALSE(a.times_max);
  auto b = parse_feature_steer("7:-2.5x");
  EXPECT_EQ(b.value, -2.5);
  EXPECT_TRUE(b.times_max);
  auto c = parse_feature_steer("77:clamp=0.5x");
  EXPECT_EQ(c.kind, FeatureSteer::Kind::Clamp);
  EXPECT_EQ(c.value, 0.5);
  EXPECT_TRUE(c.times_max);
  auto d = parse_feature_steer("9:ablate");
  EXPECT_EQ(d.kind, FeatureSteer::Kind::Clamp);
  EXPECT_EQ(d.value, 0.0);
  EXPECT_EQ(describe(d), "9:ablate");
  EXPECT_EQ(describe(a), "123:+8");
  EXPECT_EQ(describe(b), "7:-2.5x");
  auto dir = parse_direction_steer("dirs/honesty.safetensors#v:-3");
  EXPECT_EQ(dir.file, "dirs/honesty.safetensors#v");
  EXPECT_EQ(dir.alpha, -3.0);
}

TEST(SteerSpec, ErrorsQuoteTheSpecAndTheForms) {
  for (const std::string bad :
       {"123", "x:+1", "-1:+1", "12:8", "12:+", "12:+nan", "12:clamp=", "12:clamp=1y"}) {
    const auto e = error_of([&] { parse_feature_steer(bad); });
    EXPECT_TRUE(contains(e, "'" + bad + "'") && contains(e, "LATENT:clamp=V")) << bad << ": " << e;
  }
  EXPECT_TRUE(contains(error_of([] { parse_direction_steer("file.npy"); }), "write FILE:ALPHA"));
  EXPECT_TRUE(contains(error_of([] { parse_direction_steer("file.npy:2x"); }), "write FILE:ALPHA"));
}

TEST(SteerSpec, WatchSpecs) {
  EXPECT_EQ(parse_watch("5").latent, 5);
  EXPECT_LT(parse_watch("5").threshold, 0);
  EXPECT_EQ(parse_watch("5:4.5").threshold, 4.5);
  EXPECT_EQ(parse_watch("5:q0.99").quantile, 0.99);
  for (const std::string bad : {"", "a", "5:", "5:-1", "5:q1.5", "5:qx"})
    EXPECT_TRUE(contains(error_of([&] { parse_watch(bad); }), "--watch '" + bad + "'")) << bad;
  LatentReference ref;
  ref.rows = 10;
  ref.positive[5] = {1, 2, 3};
  const auto w = resolve_watches({parse_watch("5:q0.8"), parse_watch("5:7")}, 0.999, &ref, 16);
  EXPECT_EQ(w[0].threshold, 1.0);  // 8 of 10 rows <= 1: seven zeros and the 1
  EXPECT_EQ(w[1].threshold, 7.0);
  EXPECT_EQ(w[1].origin, "given");
  EXPECT_TRUE(
      contains(error_of([&] { resolve_watches({parse_watch("16")}, 0.9, &ref, 16); }), "latents 0 to 15"));
  EXPECT_TRUE(contains(error_of([&] { resolve_watches({parse_watch("5")}, 0.9, nullptr, 16); }), "give one"));
}

TEST(SteerReference, NearestRankQuantiles) {
  const std::vector<float> pos = {0.5f, 1.0f, 4.0f, 9.0f};  // 10 rows: 6 zeros, then these
  EXPECT_EQ(nearest_rank_quantile(pos, 10, 0.0), 0.0);
  EXPECT_EQ(nearest_rank_quantile(pos, 10, 0.6), 0.0);   // rank 6: the last zero
  EXPECT_EQ(nearest_rank_quantile(pos, 10, 0.61), 0.5);  // rank 7
  EXPECT_EQ(nearest_rank_quantile(pos, 10, 0.9), 4.0);   // rank 9
  EXPECT_EQ(nearest_rank_quantile(pos, 10, 1.0), 9.0);
  EXPECT_TRUE(contains(error_of([&] { nearest_rank_quantile(pos, 10, 1.5); }), "must lie in [0, 1]"));
}

TEST(SteerEdits, MaskCoversTheRightPositions) {
  // A prompt of 5 tokens: "generated" starts at its last position, 4.
  EXPECT_TRUE(at::equal(edit_mask(5, {0, 5}, EditPositions::Generated).flatten(),
                        torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f})));
  EXPECT_TRUE(at::equal(edit_mask(1, {7, 5}, EditPositions::Generated).flatten(), torch::tensor({1.f})));
  EXPECT_TRUE(at::equal(edit_mask(3, {0, 5}, EditPositions::All).flatten(), torch::tensor({1.f, 1.f, 1.f})));
  const auto act = at::zeros({1, 2, 3});
  const auto out =
      add_direction(act, torch::tensor({1.f, 2.f, 3.f}), 2.0, edit_mask(2, {0, 2}, EditPositions::Generated));
  EXPECT_TRUE(at::equal(out[0][0], at::zeros({3})));
  EXPECT_TRUE(at::equal(out[0][1], torch::tensor({2.f, 4.f, 6.f})));
}

std::string npy(const std::string& header_dict, std::size_t data_bytes, char major = 1) {
  std::string h = header_dict + "\n";
  std::string b = std::string("\x93NUMPY", 6) + major + '\0';
  b += static_cast<char>(h.size() & 0xFF);
  b += static_cast<char>(h.size() >> 8);
  if (major > 1) b += std::string(2, '\0');
  return b + h + std::string(data_bytes, '\0');
}

TEST(SteerDirection, NpyHeadersAreChecked) {
  test::TempDir dir("npy");
  auto write = [&](const std::string& name, const std::string& bytes) {
    test::write_bytes(dir / name, bytes);
    return (dir / name).string();
  };
  const auto ok = write("ok.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 4), }", 32));
  EXPECT_EQ(load_npy(ok).sizes(), (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(load_direction(ok, 4).sizes(), (std::vector<std::int64_t>{4}));
  EXPECT_TRUE(contains(error_of([&] { load_direction(ok, 576); }), "width 4 but the hook's width is 576"));
  const auto v2 = write("v2.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12, 2));
  EXPECT_EQ(load_npy(v2).size(0), 3);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"magic.npy", "PK\x03\x04 not numpy at all"},
      {"dtype.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 12)},
      {"short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8)},
      {"rank.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", 32)},
      {"noshape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", 12)},
      {"fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16)},
      {"version.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12, 9)},
  };
  const std::vector<std::string> says = {
      "does not start with", "'<i4' is not supported", "needs 12 data bytes",       "1- or 2-dimensional",
      "no valid 'shape'",    "Fortran-ordered",        "version 9 is not supported"};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const auto e = error_of([&] { load_npy(write(bad[i].first, bad[i].second)); });
    EXPECT_TRUE(contains(e, bad[i].first) && contains(e, says[i])) << e;
  }
  auto huge = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12);
  huge[8] = '\xff';
  huge[9] = '\xff';
  EXPECT_TRUE(contains(error_of([&] { load_npy(write("huge.npy", huge)); }), "header claims 65535 bytes"));
  EXPECT_TRUE(contains(error_of([&] { load_direction((dir / "none.npy").string(), 3); }), "does not exist"));
}

std::vector<StreamDocument> read_all(const std::string& text, const std::string& format, std::size_t limit,
                                     std::int64_t* bad = nullptr) {
  std::istringstream in(text);
  DocumentStream s(in, format, "input", "text", limit);
  std::vector<StreamDocument> out;
  StreamDocument d;
  while (s.next(d)) out.push_back(d);
  if (bad) *bad = s.bad_records();
  return out;
}

TEST(MonitorStream, TextDocumentsAreParagraphsCutAtTheLimit) {
  auto docs = read_all("one\ntwo\n\n\n\nthree\n", "text", 1024);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "one\ntwo\n");
  EXPECT_EQ(docs[1].text, "three\n");
  EXPECT_EQ(docs[1].id, 1);
  // A 40-byte paragraph with a 16-byte limit: parts of one document, the 3-byte "é€" never split.
  const std::string line =
      "abcdefghijklmn\xe2\x82\xac"
      "opqrstuvwxyz0123456789";
  docs = read_all(line + "\n\nnext\n", "text", 16);
  ASSERT_GE(docs.size(), 3u);
  std::string joined;
  for (std::size_t i = 0; i + 1 < docs.size(); ++i) {
    EXPECT_EQ(docs[i].continued, i > 0);
    EXPECT_EQ(docs[i].id, 0);
    EXPECT_LE(docs[i].text.size(), 16u);
    joined += docs[i].text;
  }
  EXPECT_EQ(joined, line + "\n");
  EXPECT_EQ(docs.back().text, "next\n");
  EXPECT_FALSE(docs.back().continued);
}

TEST(MonitorStream, BadJsonlRecordsAreSkippedAndCounted) {
  std::int64_t bad = 0;
  const std::string text = "{\"text\": \"a\", \"id\": \"x1\"}\nnot json\n[1]\n{\"text\": 5}\n{\"text\": \"" +
                           std::string(100, 'z') + "\"}\n\n{\"text\": \"b\"}\n";
  const auto docs = read_all(text, "jsonl", 64, &bad);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].id, "x1");
  EXPECT_EQ(docs[1].text, "b");
  EXPECT_EQ(bad, 4);
  EXPECT_TRUE(contains(error_of([] { read_all("", "csv", 64); }), "'csv' is not one of"));
}

}  // namespace
}  // namespace saelab
