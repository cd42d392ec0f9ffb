// The report's building blocks: escaping untrusted text, the bounded top-k, bins, selection.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "html_text.hpp"
#include "latent_collect.hpp"
#include "saelab/core/error.hpp"

using namespace saelab;
using namespace saelab::report;

TEST(HtmlText, EscapesMarkupAndQuotes) {
  EXPECT_EQ(html::escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  const auto t = html::token_html("<b>", html::Whitespace::Context);
  EXPECT_EQ(t, "&lt;b&gt;");
}

TEST(HtmlText, WhitespaceAndControlsAreVisible) {
  EXPECT_EQ(html::token_html(" the", html::Whitespace::Context), " the");
  EXPECT_EQ(html::token_html(" the", html::Whitespace::Standalone), "<span class=\"ws\">\u00B7</span>the");
  EXPECT_EQ(html::token_html("a\nb", html::Whitespace::Context), "a<span class=\"ws\">\u21B5</span>b");
  EXPECT_EQ(html::visible_text("\t\x01"), "\u21E5\\x01");
  EXPECT_EQ(html::token_html("", html::Whitespace::Context), "<span class=\"ws\">\u2205</span>");
}

TEST(HtmlText, InvalidUtf8BecomesByteMarkers) {
  // Half of "€" (E2 82 AC), an overlong '/', a lone continuation byte and a surrogate.
  EXPECT_EQ(html::visible_text("\xE2\x82"), "\\xE2\\x82");
  EXPECT_EQ(html::visible_text("\xC0\xAF"), "\\xC0\\xAF");
  EXPECT_EQ(html::visible_text("a\x80"), "a\\x80");
  EXPECT_EQ(html::visible_text("\xED\xA0\x80"), "\\xED\\xA0\\x80");
  EXPECT_EQ(html::visible_text("\xE2\x82\xAC"), "\u20AC");  // a whole one passes
  EXPECT_EQ(html::visible_text("caf\xC3\xA9"), "caf\u00E9");
}

TEST(HtmlText, BidiOverridesCannotReorderThePage) {
  EXPECT_EQ(html::visible_text("\u202E"
                               "evil"),
            "[U+202E]evil");
  EXPECT_EQ(html::visible_text("a\u200Bb"), "a[U+200B]b");
}

TEST(HtmlText, Numbers) {
  EXPECT_EQ(html::num(0.123456, 3), "0.123");
  EXPECT_EQ(html::num(std::nan(""), 3), "\u2014");
  EXPECT_EQ(html::count(1234567), "1\u2009234\u2009567");
  EXPECT_EQ(html::percent(0.5), "50.0%");
  EXPECT_EQ(html::percent(0.000123), "0.012%");
}

TEST(TopK, EqualsSortedPrefixIncludingTies) {
  std::mt19937 rng(3);
  std::vector<Example> all;
  TopK top(7);
  for (int i = 0; i < 500; ++i) {
    Example e;
    e.act = float(rng() % 40);  // many ties: the order must fall back to (seq, pos)
    e.seq = rng() % 30;
    e.pos = rng() % 16;
    all.push_back(e);
    if (top.accepts(e.act, e.seq, e.pos)) top.push(e);
  }
  std::sort(all.begin(), all.end(), ranks_before);
  auto got = top.sorted();
  ASSERT_EQ(got.size(), 7u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].act, all[i].act);
    EXPECT_EQ(got[i].seq, all[i].seq);
    EXPECT_EQ(got[i].pos, all[i].pos);
  }
}

TEST(Bins, IntervalsAreOpenBelowClosedAbove) {
  EXPECT_EQ(bin_of(10.0, 10.0, 5), 4);  // the max is in the last bin
  EXPECT_EQ(bin_of(2.0, 10.0, 5), 0);   // (0, 2]
  EXPECT_EQ(bin_of(2.0001, 10.0, 5), 1);
  EXPECT_EQ(bin_of(0.001, 10.0, 5), 0);
}

TEST(Selection, MostActiveRandomAndList) {
  auto counts = torch::tensor({5, 0, 9, 9, 1}, torch::kInt64);
  auto maxv = torch::tensor({1.0f, 0.0f, 0.5f, 3.0f, 7.0f});
  EXPECT_EQ(select_latents(Selection::MostActive, counts, maxv, 3, {}, 0),
            (std::vector<std::int64_t>{2, 3, 0}));
  EXPECT_EQ(select_latents(Selection::MaxActivation, counts, maxv, 2, {}, 0),
            (std::vector<std::int64_t>{4, 3}));
  auto r = select_latents(Selection::Random, counts, maxv, 10, {}, 5);
  EXPECT_EQ(r, (std::vector<std::int64_t>{0, 2, 3, 4}));  // all live ones, never the dead one
  EXPECT_EQ(select_latents(Selection::List, counts, maxv, 1, {4, 1, 4}, 0),
            (std::vector<std::int64_t>{4, 1}));
  EXPECT_THROW(parse_selection("best"), ConfigError);
}
