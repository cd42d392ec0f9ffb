// decode(encode(x)) == x for arbitrary bytes: random bytes (mostly invalid UTF-8), random mixes of
// valid multi-byte characters with stray bytes, with and without special tokens.
#include <random>

#include <gtest/gtest.h>

#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

TEST(Gpt2TokenizerRoundTrip, RandomBytes) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  std::mt19937 rng(12345);
  std::size_t bytes = 0, tokens = 0, failures = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s(std::uniform_int_distribution<int>(0, 200)(rng), '\0');
    // Half the strings draw from all 256 bytes, half mostly from bytes >= 0x80 to hit truncated,
    // overlong and surrogate sequences more often.
    for (char& c : s) c = static_cast<char>(i % 2 ? rng() : 0x80 | rng());
    for (bool special : {false, true}) {
      const auto ids = tok.encode(s, special);
      for (auto id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
      if (tok.decode(ids) != s) ++failures;
      bytes += s.size();
      tokens += ids.size();
    }
  }
  std::printf("[round trip] random bytes: %zu bytes, %zu tokens, %zu mismatches\n", bytes, tokens, failures);
  EXPECT_EQ(failures, 0u);
}

TEST(Gpt2TokenizerRoundTrip, MixedCharactersAndStrayBytes) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  const std::vector<std::string> atoms = {"a",
                                          "Z",
                                          " ",
                                          "\n",
                                          "\r\n",
                                          "\t",
                                          "'s",
                                          "'LL",
                                          "0",
                                          "42",
                                          "?",
                                          "<|endoftext|>",
                                          "<|",
                                          "\xc3\xa9",
                                          "\xe2\x80\x99",
                                          "\xe4\xb8\xad",
                                          "\xf0\x9f\x91\x8d",
                                          "\xcc\x81",
                                          "\xe2\x80\xa8",
                                          std::string(1, '\0'),
                                          "\x7f",
                                          "\xff",
                                          "\xc3",
                                          "\xe2\x82",
                                          "\xf0\x9f\x91",
                                          "\xed\xa0\x80",
                                          "\xf4\x90\x80\x80"};
  std::mt19937 rng(99);
  std::size_t failures = 0, n = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const int len = std::uniform_int_distribution<int>(0, 80)(rng);
    for (int k = 0; k < len; ++k) s += atoms[rng() % atoms.size()];
    for (bool special : {false, true}) {
      failures += tok.decode(tok.encode(s, special)) != s;
      ++n;
    }
  }
  std::printf("[round trip] %zu mixed strings, %zu mismatches\n", n, failures);
  EXPECT_EQ(failures, 0u);
}

TEST(Gpt2TokenizerRoundTrip, EveryTokenDecodesToItsBytes) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  std::vector<std::int32_t> all(static_cast<std::size_t>(tok.vocab_size()));
  std::string expect;
  for (std::int32_t i = 0; i < tok.vocab_size(); ++i) {
    all[static_cast<std::size_t>(i)] = i;
    expect += tok.token_bytes(i);
  }
  EXPECT_EQ(tok.decode(all), expect);
  // Each single byte is a token of its own (byte-level BPE covers every byte string).
  for (int b = 0; b < 256; ++b) {
    const std::string s(1, static_cast<char>(b));
    const auto ids = tok.encode(s);
    ASSERT_EQ(ids.size(), 1u) << "byte " << b;
    EXPECT_EQ(tok.token_bytes(ids[0]), s) << "byte " << b;
  }
}

}  // namespace
}  // namespace saelab::test
