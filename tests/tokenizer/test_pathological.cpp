// Pathological inputs finish and scale near-linearly: a naive BPE (rescan for the best pair after
// every merge) is quadratic on one huge pre-token, and so is a regex that backtracks per position.
// Each input is encoded at 0.25 MB and 1 MB; linear time gives a ratio of 4, quadratic 16. The
// bound (ratio < 10, 1 MB under 20 s) is loose on purpose: this is not a speed test.
#include <chrono>
#include <functional>
#include <random>

#include <gtest/gtest.h>

#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

double seconds_to_encode(const text::BpeTokenizer& tok, const std::string& text, std::size_t& tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  tokens = ids.size();
  EXPECT_EQ(tok.decode(ids), text) << "round trip failed";
  return s;
}

void expect_near_linear(const std::string& name, const std::function<std::string(std::size_t)>& make,
                        const text::BpeTokenizer& tok = gpt2_tokenizer()) {
  const std::size_t small = 256 * 1024, large = 1024 * 1024;
  std::size_t small_tokens = 0, large_tokens = 0;
  // Best of two for each size, so one scheduling hiccup on a loaded machine does not decide.
  double t_small = 1e9, t_large = 1e9;
  for (int r = 0; r < 2; ++r) {
    t_small = std::min(t_small, seconds_to_encode(tok, make(small), small_tokens));
    t_large = std::min(t_large, seconds_to_encode(tok, make(large), large_tokens));
  }
  const double ratio = t_large / std::max(t_small, 1e-4);
  std::printf(
      "[pathological] %-28s 0.25 MB: %7.3f s (%zu tokens)  1 MB: %7.3f s (%zu tokens)  "
      "ratio %.2f\n",
      name.c_str(), t_small, small_tokens, t_large, large_tokens, ratio);
  EXPECT_LT(t_large, 20.0) << name;
  // Below 50 ms, page faults and the timer are noise, not a scaling signal.
  if (t_large > 0.05) {
    EXPECT_LT(ratio, 10.0) << name;
  }
}

TEST(Gpt2TokenizerPathological, NearLinear) {
  SAELAB_REQUIRE_GPT2_DATA();
  std::mt19937 rng(7);
  expect_near_linear("one letter", [](std::size_t n) { return std::string(n, 'a'); });
  expect_near_linear("letters, no space", [&](std::size_t n) {
    std::string s(n, 'a');
    for (char& c : s) c = static_cast<char>('a' + rng() % 26);
    return s;
  });
  expect_near_linear("spaces then a letter", [](std::size_t n) { return std::string(n - 1, ' ') + "x"; });
  expect_near_linear("newlines", [](std::size_t n) { return std::string(n, '\n'); });
  expect_near_linear("space-newline mix", [&](std::size_t n) {
    std::string s(n, ' ');
    for (char& c : s) c = " \n\t"[rng() % 3];
    return s + "x";
  });
  expect_near_linear("digits", [](std::size_t n) { return std::string(n, '7'); });
  expect_near_linear("punctuation", [](std::size_t n) { return std::string(n, '!'); });
  expect_near_linear("CJK, one character", [](std::size_t n) {
    std::string s;
    while (s.size() + 3 <= n) s += "\xe4\xb8\x80";
    return s;
  });
  expect_near_linear("apostrophes", [](std::size_t n) { return std::string(n, '\''); });
  expect_near_linear("invalid bytes", [](std::size_t n) { return std::string(n, '\xff'); });
}

// SmolLM's pre-tokenizer looks for the next number from where it stands and splits each stretch
// once, so digits between long whitespace runs stay linear too.
TEST(SmolLMTokenizerPathological, NearLinear) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_smollm_tokenizer();
  std::mt19937 rng(11);
  expect_near_linear(
      "smollm: digits", [](std::size_t n) { return std::string(n, '7'); }, tok);
  expect_near_linear(
      "smollm: letters, no digit", [](std::size_t n) { return std::string(n, 'a'); }, tok);
  expect_near_linear(
      "smollm: spaces then a digit", [](std::size_t n) { return std::string(n - 1, ' ') + "1"; }, tok);
  expect_near_linear(
      "smollm: space-digit mix",
      [&](std::size_t n) {
        std::string s(n, ' ');
        for (char& c : s) c = " \n1x"[rng() % 4];
        return s;
      },
      tok);
  expect_near_linear(
      "smollm: Arabic-Indic digits",
      [](std::size_t n) {
        std::string s;
        while (s.size() + 2 <= n) s += "\xd9\xa3";
        return s;
      },
      tok);
}

TEST(Gpt2TokenizerPathological, TenThousandSpaces) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  for (const std::string& text : {std::string(10000, ' '), std::string(10000, ' ') + "word",
                                  "word" + std::string(10000, ' ') + "word"}) {
    const auto ids = tok.encode(text);
    EXPECT_EQ(tok.decode(ids), text);
    std::printf("[pathological] %zu bytes with 10k spaces -> %zu tokens\n", text.size(), ids.size());
  }
}

}  // namespace
}  // namespace saelab::test
