// Tokenizers built from an in-memory vocabulary (BpeTokenizer::from_vocabulary, what a GGUF file
// holds): small hand-made vocabularies whose ids are computed by hand (SmolLM's digit splitting,
// several special tokens with shared prefixes), malformed vocabularies whose errors must name
// `where` and the index at fault, and GPT-2's own lists, which must give what its files give.
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<std::int32_t>;
using text::BpeTokenizer;
using text::BpeVocabulary;
using text::PreTokenizerKind;

// Ids: byte b -> b, then `extra` (raw bytes) from 256, then `specials` (taken as they are).
// `merges` are {left, right} in raw bytes, best first.
BpeVocabulary small_vocabulary(const std::vector<std::string>& extra,
                               const std::vector<std::pair<std::string, std::string>>& merges,
                               const std::vector<std::string>& specials = {},
                               PreTokenizerKind kind = PreTokenizerKind::SmolLM) {
  BpeVocabulary v;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(to_alphabet(std::string(1, static_cast<char>(b))));
  for (const std::string& t : extra) v.tokens.push_back(to_alphabet(t));
  for (const std::string& s : specials) {
    v.special_ids.push_back(static_cast<std::int32_t>(v.tokens.size()));
    v.tokens.push_back(s);
  }
  for (const auto& [l, r] : merges) v.merges.push_back(to_alphabet(l) + " " + to_alphabet(r));
  v.pretokenizer = kind;
  v.where = "small.gguf: tokenizer.ggml";
  v.identity = "small vocabulary";
  return v;
}

// The id of extra token `i` of small_vocabulary.
constexpr std::int32_t extra(int i) {
  return 256 + i;
}

std::int32_t byte(unsigned char b) {
  return b;
}

TEST(BpeVocabularySmolLM, NumbersAreAloneAndStretchesEndAtThem) {
  // 256 "  ", 257 "12", 258 "ab", 259 "١" (D9 A1), 260 "٢" (D9 A2), 261 "١٢", 262 " " + E2.
  const std::vector<std::string> extras = {"  ",   "12", "ab", "\xd9\xa1", "\xd9\xa2", "\xd9\xa1\xd9\xa2",
                                           " \xe2"};
  const std::vector<std::pair<std::string, std::string>> merges = {
      {" ", " "},   {"1", "2"}, {"a", "b"}, {"\xd9", "\xa1"}, {"\xd9", "\xa2"}, {"\xd9\xa1", "\xd9\xa2"},
      {" ", "\xe2"}};
  const auto smollm = BpeTokenizer::from_vocabulary(small_vocabulary(extras, merges));
  const auto gpt2 =
      BpeTokenizer::from_vocabulary(small_vocabulary(extras, merges, {}, PreTokenizerKind::Gpt2));
  EXPECT_EQ(smollm.pretokenizer(), PreTokenizerKind::SmolLM);
  EXPECT_EQ(smollm.vocab_size(), 263);
  // "  1": the stretch "  " ends at the digit, so \s+(?!\S) takes both spaces; GPT-2's regex on the
  // whole text leaves one space for " ?\p{N}+".
  EXPECT_EQ(smollm.encode("  1"), (Ids{extra(0), '1'}));
  EXPECT_EQ(gpt2.encode("  1"), (Ids{' ', ' ', '1'}));
  EXPECT_EQ(smollm.encode(" 1"), (Ids{' ', '1'}));
  // Each digit alone, although "1 2" has a rule.
  EXPECT_EQ(smollm.encode("12"), (Ids{'1', '2'}));
  EXPECT_EQ(gpt2.encode("12"), (Ids{extra(1)}));
  EXPECT_EQ(smollm.encode("ab12ab"), (Ids{extra(2), '1', '2', extra(2)}));
  EXPECT_EQ(smollm.encode("x1y"), (Ids{'x', '1', 'y'}));
  // Arabic-Indic digits (Nd) one by one; GPT-2 keeps the run together.
  EXPECT_EQ(smollm.encode("\xd9\xa1\xd9\xa2"), (Ids{extra(3), extra(4)}));
  EXPECT_EQ(gpt2.encode("\xd9\xa1\xd9\xa2"), (Ids{extra(5)}));
  // A Roman numeral (Nl, E2 85 AB) is a number too: its leading space stays behind.
  EXPECT_EQ(smollm.encode("x \xe2\x85\xab"), (Ids{'x', ' ', byte(0xe2), byte(0x85), byte(0xab)}));
  EXPECT_EQ(gpt2.encode("x \xe2\x85\xab"), (Ids{'x', extra(6), byte(0x85), byte(0xab)}));
  // "½" (No) alone; "\n\n" then each digit.
  EXPECT_EQ(smollm.encode("\xc2\xbd"
                          "1"),
            (Ids{byte(0xc2), byte(0xbd), '1'}));
  EXPECT_EQ(smollm.encode("\n\n2026"), (Ids{'\n', '\n', '2', '0', '2', '6'}));
  // Invalid bytes between digits are still their own tokens, and everything round-trips.
  for (const char* s : {"1\xff"
                        "2",
                        "  1  2   3 ", "\xd9\xa1 \xd9", "3.14", ""})
    EXPECT_EQ(smollm.decode(smollm.encode(s)), s);
}

TEST(BpeVocabularySpecials, LongestAtTheLeftmostPlaceAndOnlyWhenAllowed) {
  // 256 "ab"; specials 257 "<s>", 258 "<s>x", 259 "<|a|>", 260 "[X]", 261 "<a b>" (a space), 262 a
  // name outside GPT-2's byte alphabet, as DeepSeek's are: specials are taken as they are.
  const std::string fancy =
      "<\xef\xbd\x9c"
      "begin\xe2\x96\x81of\xef\xbd\x9c>";
  const auto tok = BpeTokenizer::from_vocabulary(
      small_vocabulary({"ab"}, {{"a", "b"}}, {"<s>", "<s>x", "<|a|>", "[X]", "<a b>", fancy}));
  EXPECT_EQ(tok.special_ids(), (Ids{257, 258, 259, 260, 261, 262}));
  EXPECT_EQ(tok.eot(), -1);  // no "<|endoftext|>"
  EXPECT_EQ(tok.encode("<s>", true), (Ids{257}));
  EXPECT_EQ(tok.encode("<s>x", true), (Ids{258}));  // the longer one starting there
  EXPECT_EQ(tok.encode("<s>y", true), (Ids{257, 'y'}));
  EXPECT_EQ(tok.encode("<s<s>x<s>", true), (Ids{'<', 's', 258, 257}));
  EXPECT_EQ(tok.encode("ab<s>ab<|a|>[X]ab", true), (Ids{256, 257, 256, 259, 260, 256}));
  EXPECT_EQ(tok.encode("<s><s>", true), (Ids{257, 257}));
  EXPECT_EQ(tok.encode("x <a b> y", true), (Ids{'x', ' ', 261, ' ', 'y'}));
  EXPECT_EQ(tok.encode(fancy + "ab", true), (Ids{262, 256}));
  EXPECT_EQ(tok.encode("<|a| [X <a", true), tok.encode("<|a| [X <a", false));
  // Without allow_special their text is ordinary text.
  EXPECT_EQ(tok.encode("<s>"), (Ids{'<', 's', '>'}));
  EXPECT_EQ(tok.encode("ab[X]", false), (Ids{256, '[', 'X', ']'}));
  EXPECT_EQ(tok.decode({257, 256, 262}), "<s>ab" + fancy);
  EXPECT_EQ(tok.token_bytes(261), "<a b>");
  // The text between specials is encoded on its own: "  " before "<s>" ends its stretch, so both
  // spaces are one pre-token (256 "  "), not " " and " <".
  const auto spaces = BpeTokenizer::from_vocabulary(small_vocabulary({"  "}, {{" ", " "}}, {"<s>"}));
  EXPECT_EQ(spaces.encode("a  <s>", true), (Ids{'a', 256, 257}));
  EXPECT_EQ(spaces.encode("a  <s>", false), (Ids{'a', ' ', ' ', '<', 's', '>'}));
  // "<|endoftext|>" among the specials is eot().
  const auto with_eot = BpeTokenizer::from_vocabulary(small_vocabulary({}, {}, {"<s>", "<|endoftext|>"}));
  EXPECT_EQ(with_eot.eot(), 257);
  EXPECT_EQ(with_eot.encode("a<|endoftext|>", true), (Ids{'a', 257}));
}

TEST(BpeVocabulary, IdentityNamesPreTokenizerAndCallerIdentity) {
  auto v = small_vocabulary({}, {});
  const auto tok = BpeTokenizer::from_vocabulary(v);
  EXPECT_EQ(tok.sha256(), sha256_hex("bpe-vocabulary\nsmollm\nsmall vocabulary\n"));
  v.pretokenizer = PreTokenizerKind::Gpt2;
  EXPECT_EQ(BpeTokenizer::from_vocabulary(v).sha256(),
            sha256_hex("bpe-vocabulary\ngpt2\nsmall vocabulary\n"));
  v.identity.clear();
  const std::string m = error_of([&] { BpeTokenizer::from_vocabulary(v); });
  EXPECT_TRUE(contains(m, "small.gguf: tokenizer.ggml") && contains(m, "identity")) << m;
}

TEST(BpeVocabulary, PreTokenizerNames) {
  EXPECT_EQ(text::parse_pretokenizer("gpt2", "x"), PreTokenizerKind::Gpt2);
  EXPECT_EQ(text::parse_pretokenizer("smollm", "x"), PreTokenizerKind::SmolLM);
  EXPECT_EQ(text::pretokenizer_name(PreTokenizerKind::SmolLM), "smollm");
  EXPECT_EQ(text::pretokenizer_name(PreTokenizerKind::Gpt2), "gpt2");
  try {
    text::parse_pretokenizer("llama-bpe", "m.gguf: tokenizer.ggml.pre");
    ADD_FAILURE() << "accepted an unknown pre-tokenizer";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    std::printf("[vocabulary error] %s\n", m.c_str());
    for (const char* part : {"\"llama-bpe\"", "m.gguf: tokenizer.ggml.pre", "\"gpt2\"", "\"smollm\""})
      EXPECT_TRUE(contains(m, part)) << "lacks " << part << ": " << m;
  }
}

// Expects from_vocabulary(v) to throw FormatError whose message contains every one of `parts`.
void expect_vocabulary_error(const BpeVocabulary& v, const std::vector<std::string>& parts) {
  try {
    BpeTokenizer::from_vocabulary(v);
    ADD_FAILURE() << "accepted a malformed vocabulary; expected an error containing " << parts[0];
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(v.where), std::string::npos) << e.what();
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message lacks \"" << p << "\": " << e.what();
    std::printf("[vocabulary error] %s\n", e.what());
  }
}

TEST(BpeVocabularyErrors, MalformedTokens) {
  auto v = small_vocabulary({"ab", "cd", "ab"}, {});
  expect_vocabulary_error(v, {"token 258 \"ab\"", "token 256", "unique"});
  v = small_vocabulary({}, {});
  v.tokens.push_back("\xe2\x82\xac");  // "€" is not in the byte alphabet
  expect_vocabulary_error(v, {"token 256", "U+20AC", "alphabet"});
  v = small_vocabulary({}, {});
  v.tokens.push_back("");
  expect_vocabulary_error(v, {"token 256", "empty"});
  v = small_vocabulary({}, {});
  v.tokens.push_back("a\xff");
  expect_vocabulary_error(v, {"token 256", "UTF-8"});
  v.tokens.clear();
  expect_vocabulary_error(v, {"no tokens"});
  // A special token with the bytes of an ordinary one is a duplicate too.
  v = small_vocabulary({"ab"}, {}, {"ab"});
  expect_vocabulary_error(v, {"token 257", "token 256", "unique"});
}

// SmolLM2's vocabulary has no token for most C0 control bytes. Hugging Face's BPE (no unknown
// token, no byte fallback) skips such characters inside a pre-token before merging, so in the one
// pre-token "!\x04!" the two "!" still merge; "a\x04b" is three pre-tokens (a control character
// is neither a letter nor a space), so it gives "a", "b".
TEST(BpeVocabulary, BytesWithoutATokenAreDroppedBeforeMerging) {
  auto v = small_vocabulary({"ab", "!!"}, {{"a", "b"}, {"!", "!"}});
  v.tokens.erase(v.tokens.begin() + 4);  // no token for byte 4: bytes above it shift down by one
  const auto tok = BpeTokenizer::from_vocabulary(v);
  const std::int32_t a = 'a' - 1, b = 'b' - 1, bang2 = 256, x = 'x' - 1;
  EXPECT_EQ(tok.encode("!\x04!"), (Ids{bang2}));
  EXPECT_EQ(tok.encode("a\x04"
                       "b"),
            (Ids{a, b}));
  EXPECT_EQ(tok.encode("ab"), (Ids{255}));
  EXPECT_EQ(tok.encode("\x04"), Ids{});
  EXPECT_EQ(tok.encode("x\x04\x04"), (Ids{x}));
  EXPECT_EQ(tok.encode("\x03"), (Ids{3}));  // bytes below the gap keep their ids
  // A vocabulary file of GPT-2's format must still hold all 256 (test_vocab_errors.cpp).
}

TEST(BpeVocabularyErrors, MalformedMerges) {
  auto v = small_vocabulary({"ab"}, {{"a", "b"}});
  v.merges.push_back("a zz");
  expect_vocabulary_error(v, {"merge 1", "\"zz\"", "not in the vocabulary"});
  v = small_vocabulary({"ab"}, {{"a", "b"}, {"a", "c"}});
  expect_vocabulary_error(v, {"merge 1", "merged token \"ac\"", "not in the vocabulary"});
  v = small_vocabulary({"ab"}, {{"a", "b"}});
  v.merges.push_back("ab");
  expect_vocabulary_error(v, {"merge 1", "\"ab\"", "two tokens"});
  v = small_vocabulary({"ab"}, {{"a", "b"}, {"a", "b"}});
  expect_vocabulary_error(v, {"merge 1", "second time"});
  v = small_vocabulary({"ab"}, {});
  v.merges.push_back("a \xe2\x82\xac");
  expect_vocabulary_error(v, {"merge 0", "right token", "U+20AC"});
}

TEST(BpeVocabularyErrors, MalformedSpecialIds) {
  auto v = small_vocabulary({}, {});
  v.special_ids = {3, 256};
  expect_vocabulary_error(v, {"special_ids[1] is 256", "0..255"});
  v.special_ids = {-1};
  expect_vocabulary_error(v, {"special_ids[0] is -1"});
  v = small_vocabulary({}, {}, {"<s>", "</s>"});
  v.special_ids.push_back(256);
  expect_vocabulary_error(v, {"special_ids[2] repeats token 256", "special_ids[0]"});
  v = small_vocabulary({}, {}, {""});
  expect_vocabulary_error(v, {"token 256 (special) is empty"});
}

// GPT-2's own lists in memory give what its files give: same ids, bytes and special handling.
TEST(BpeVocabularyGpt2, InMemoryListsMatchTheFiles) {
  SAELAB_REQUIRE_GPT2_DATA();
  const auto& files = gpt2_tokenizer();
  const auto memory = BpeTokenizer::from_vocabulary(gpt2_vocabulary(PreTokenizerKind::Gpt2));
  ASSERT_EQ(memory.vocab_size(), files.vocab_size());
  EXPECT_EQ(memory.eot(), 50256);
  EXPECT_EQ(memory.special_ids(), (Ids{50256}));
  EXPECT_EQ(files.special_ids(), (Ids{50256}));
  for (std::int32_t id = 0; id < files.vocab_size(); ++id)
    ASSERT_EQ(memory.token_bytes(id), files.token_bytes(id)) << "token " << id;
  std::vector<fs::path> inputs = {source_dir() / "tests/tokenizer/adversarial.txt"};
  const auto corpus = sotu_files();
  for (std::size_t i = 0; i < corpus.size(); i += 20) inputs.push_back(corpus[i]);
  std::size_t tokens = 0;
  for (const fs::path& p : inputs) {
    const std::string text = read_bytes(p);
    for (bool special : {false, true}) {
      const Ids ours = memory.encode(text, special);
      EXPECT_EQ(ours, files.encode(text, special)) << p << (special ? " (allow_special)" : "");
      tokens += ours.size();
    }
  }
  std::printf("[in-memory gpt2] %zu inputs, %zu tokens identical to the files' tokenizer\n", inputs.size(),
              tokens);
}

}  // namespace
}  // namespace saelab::test
