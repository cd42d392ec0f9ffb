// Known ids: values from OpenAI's GPT-2 vocabulary that any GPT-2 tokenizer must reproduce.
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

using Ids = std::vector<std::int32_t>;

TEST(Gpt2Tokenizer, KnownIds) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.eot(), 50256);
  EXPECT_EQ(tok.encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(tok.encode(" the"), (Ids{262}));
  EXPECT_EQ(tok.token_bytes(262), " the");
  EXPECT_EQ(tok.token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(tok.encode("<|endoftext|>", true), (Ids{50256}));
  // Without allow_special the literal is text: "<|", "endoftext", "|>" as pre-tokens.
  EXPECT_EQ(tok.encode("<|endoftext|>"), (Ids{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(tok.encode("a<|endoftext|>b", true), (Ids{64, 50256, 65}));
  EXPECT_EQ(tok.encode("<|endoftext|><|endoftext|>", true), (Ids{50256, 50256}));
  EXPECT_EQ(tok.encode(""), Ids{});
  EXPECT_EQ(tok.decode({15496, 995}), "Hello world");
}

TEST(Gpt2Tokenizer, IdentityIsBothFilesDigests) {
  SAELAB_REQUIRE_GPT2_DATA();
  const std::string expect = sha256_hex(
      "gpt2-bpe\n"
      "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783\n"
      "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5\n");
  EXPECT_EQ(gpt2_tokenizer().sha256(), expect);
}

TEST(Gpt2Tokenizer, InvalidUtf8BytesAreTheirOwnTokens) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  auto byte_id = [&](unsigned char b) {
    const Ids ids = tok.encode(std::string(1, static_cast<char>(b)));
    EXPECT_EQ(ids.size(), 1u) << "byte " << int(b);
    EXPECT_EQ(tok.token_bytes(ids.at(0)), std::string(1, static_cast<char>(b)));
    return ids.at(0);
  };
  // "a" then the invalid 0xFF then "b": three pre-tokens, not one.
  EXPECT_EQ(tok.encode("a\xff"
                       "b"),
            (Ids{64, byte_id(0xff), 65}));
  // A truncated 3-byte sequence: each byte stands alone; the runs around it encode as usual.
  Ids expect = tok.encode("Hello");
  expect.push_back(byte_id(0xe2));
  expect.push_back(byte_id(0x82));
  for (auto id : tok.encode(" world")) expect.push_back(id);
  EXPECT_EQ(tok.encode("Hello\xe2\x82 world"), expect);
  // Surrogate code points (ED A0 80) and overlong forms (C0 AF) are not UTF-8 either.
  EXPECT_EQ(tok.encode("\xed\xa0\x80"), (Ids{byte_id(0xed), byte_id(0xa0), byte_id(0x80)}));
  EXPECT_EQ(tok.encode("\xc0\xaf"), (Ids{byte_id(0xc0), byte_id(0xaf)}));
  EXPECT_EQ(tok.decode(tok.encode("x\xc0\xafy")), "x\xc0\xafy");
}

TEST(Gpt2Tokenizer, DecodeRejectsOutOfRangeIds) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& tok = gpt2_tokenizer();
  for (std::int32_t bad : {50257, -1}) {
    try {
      tok.decode({15496, bad});
      ADD_FAILURE() << "decode accepted id " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("[0, 50257)"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(tok.token_bytes(60000), Error);
}

}  // namespace
}  // namespace saelab::test
