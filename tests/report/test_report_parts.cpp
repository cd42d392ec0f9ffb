// The report's building blocks: escaping untrusted text, token display strings, data scripts.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "html_text.hpp"
#include "report_json.hpp"
#include "saelab/core/token_display.hpp"
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

TEST(TokenDisplay, PiecesMergeAndMarkersSitAtOddIndices) {
  const auto p = token_display("ab\ncd\x80");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_FALSE(p[0].marker);
  EXPECT_EQ(p[0].text, "ab");
  EXPECT_TRUE(p[1].marker);
  EXPECT_EQ(p[1].text, "\u21B5");
  EXPECT_EQ(p[3].text, "\\x80");
  EXPECT_EQ(display_text(std::string("\0", 1)), "\\x00");
  EXPECT_EQ(display_text(""), "\u2205");
  EXPECT_EQ(report::display_json(" the"), " the");
  EXPECT_EQ(report::display_json("\x80").dump(), R"(["","\\x80"])");
  EXPECT_EQ(report::display_json("a\u202E").dump(), R"(["a","[U+202E]"])");
}

TEST(JsCall, DataCannotCloseTheScriptOrBreakALine) {
  const nlohmann::json v = {{"t", "</script><script>alert(1)</script> & \u2028\u2029 <!--"}};
  const auto js = report::js_call("SAELAB.x(", v);
  EXPECT_EQ(js.find('<'), std::string::npos) << js;
  EXPECT_EQ(js.find('>'), std::string::npos) << js;
  EXPECT_EQ(js.find('&'), std::string::npos) << js;
  EXPECT_EQ(js.find("\u2028"), std::string::npos) << js;
  EXPECT_EQ(js.find("\u2029"), std::string::npos) << js;
  // Still the same value once parsed back.
  const auto body = js.substr(9, js.size() - 9 - 3);
  EXPECT_EQ(nlohmann::json::parse(body), v);
  EXPECT_EQ(js.substr(js.size() - 3), ");\n");
}

TEST(RoundSig, KeepsFiveSignificantDigits) {
  EXPECT_EQ(report::round_sig(3.14159265), 3.1416);
  EXPECT_EQ(report::round_sig(0.000123456789), 0.00012346);
  EXPECT_EQ(report::round_sig(0.0), 0.0);
}
