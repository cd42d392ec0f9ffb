// Small hand-made vocabularies: BPE semantics computed by hand (ties, rule order, the long-piece
// path), and malformed encoder.json / vocab.bpe files, whose errors must name the file and the
// key or line at fault.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<std::int32_t>;
using text::BpeTokenizer;

struct SmallVocab {
  fs::path vocab, merges;
};

// Ids: byte b -> b, then `extra` tokens from 256, then "<|endoftext|>".
SmallVocab write_small_vocab(const std::string& name, const std::vector<std::string>& extra,
                             const std::vector<std::string>& merge_lines) {
  const fs::path dir = scratch_dir("small-vocab-" + name);
  nlohmann::json v = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) v[to_alphabet(std::string(1, static_cast<char>(b)))] = b;
  int next = 256;
  for (const std::string& t : extra) v[to_alphabet(t)] = next++;
  v["<|endoftext|>"] = next;
  std::string merges = "#version: 0.2\n";
  for (const std::string& line : merge_lines) merges += line + "\n";
  write_bytes(dir / "encoder.json", v.dump());
  write_bytes(dir / "vocab.bpe", merges);
  return {dir / "encoder.json", dir / "vocab.bpe"};
}

TEST(Gpt2TokenizerSmallVocab, LowestRankLeftmostFirstOnShortAndLongPieces) {
  // 256 = "aa", 257 = "aaaa". Every "a a" merges (leftmost first) before any "aa aa".
  const auto f = write_small_vocab("ties", {"aa", "aaaa"}, {"a a", "aa aa"});
  const auto tok = BpeTokenizer::from_files(f.vocab, f.merges);
  EXPECT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.eot(), 258);
  EXPECT_EQ(tok.encode("aaa"), (Ids{256, 'a'}));
  EXPECT_EQ(tok.encode("aaaaa"), (Ids{257, 'a'}));
  EXPECT_EQ(tok.encode("aaaaaa"), (Ids{257, 256}));
  // Pieces over 64 bytes take the heap path; the result must follow the same rule.
  for (std::size_t n : {1000u, 1001u, 1002u, 1003u}) {
    Ids expect(250, 257);
    if (n % 4 >= 2) expect.push_back(256);
    if (n % 2 == 1) expect.push_back('a');
    EXPECT_EQ(tok.encode(std::string(n, 'a')), expect) << n << " letters";
  }
}

TEST(Gpt2TokenizerSmallVocab, NewPairWithLowerRankMergesFirstAsInHf) {
  // Rule 0 "ab a" ranks above rule 1 "a b" although it needs its result. HF and tiktoken merge the
  // single best pair each step, so "abab" -> "ab" "ab" -> "aba" "b". (OpenAI's original encoder.py,
  // which merges every occurrence of a bigram at once, would give "ab" "ab"; GPT-2's real rules
  // never reach this case.)
  const auto f = write_small_vocab("order", {"ab", "aba"}, {"ab a", "a b"});
  const auto tok = BpeTokenizer::from_files(f.vocab, f.merges);
  EXPECT_EQ(tok.encode("ab"), (Ids{256}));
  EXPECT_EQ(tok.encode("aba"), (Ids{257}));
  EXPECT_EQ(tok.encode("abab"), (Ids{257, 'b'}));
  std::string s10, s40;
  Ids e10, e40;
  for (int i = 0; i < 5; ++i) s10 += "abab", e10.insert(e10.end(), {257, 'b'});
  for (int i = 0; i < 20; ++i) s40 += "abab", e40.insert(e40.end(), {257, 'b'});
  EXPECT_EQ(tok.encode(s10), e10);  // short-piece path
  EXPECT_EQ(tok.encode(s40), e40);  // heap path (80 bytes)
}

// Expects from_files to throw FormatError whose message contains every one of `parts`.
void expect_format_error(const SmallVocab& f, const std::vector<std::string>& parts) {
  try {
    BpeTokenizer::from_files(f.vocab, f.merges);
    ADD_FAILURE() << "accepted malformed files; expected an error containing " << parts[0];
  } catch (const FormatError& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message lacks \"" << p << "\": " << e.what();
    std::printf("[vocab error] %s\n", e.what());
  }
}

SmallVocab with_vocab_text(const std::string& name, const std::string& json) {
  auto f = write_small_vocab(name, {"ab"}, {"a b"});
  write_bytes(f.vocab, json);
  return f;
}

SmallVocab with_merges_text(const std::string& name, const std::string& merges) {
  auto f = write_small_vocab(name, {"ab", "abc"}, {});
  write_bytes(f.merges, merges);
  return f;
}

TEST(Gpt2TokenizerFiles, MalformedEncoderJson) {
  auto f = with_vocab_text("notjson", "{\"a\": 1,\n \"b\": }");
  expect_format_error(f, {f.vocab.string(), "not valid JSON", "line 2"});
  f = with_vocab_text("array", "[1, 2]");
  expect_format_error(f, {f.vocab.string(), "top-level value is an array"});
  f = with_vocab_text("string", "{\"a\": 0, \"b\": \"1\"}");
  expect_format_error(f, {f.vocab.string(), "key \"b\"", "string", "integer id"});
  f = with_vocab_text("negative", "{\"a\": 0, \"b\": -1}");
  expect_format_error(f, {"key \"b\"", "-1", ">= 0"});
  f = with_vocab_text("float", "{\"a\": 0, \"b\": 1.5}");
  expect_format_error(f, {"key \"b\"", "1.5"});
  f = with_vocab_text("gap", "{\"a\": 0, \"b\": 2}");
  expect_format_error(f, {"key \"b\"", "id 2", "0..1"});
  f = with_vocab_text("dup", "{\"a\": 0, \"b\": 0}");
  expect_format_error(f, {"id 0", "\"a\"", "\"b\""});
  f = with_vocab_text("alphabet", "{\"a\": 0, \"\xe2\x82\xac\": 1}");
  expect_format_error(f, {"U+20AC", "alphabet"});
  f = with_vocab_text("empty", "{}");
  expect_format_error(f, {f.vocab.string(), "empty"});
}

TEST(Gpt2TokenizerFiles, EncoderJsonMissingBytesOrEot) {
  auto f = write_small_vocab("noeot", {}, {});
  nlohmann::json v = nlohmann::json::parse(read_bytes(f.vocab));
  v.erase("<|endoftext|>");
  write_bytes(f.vocab, v.dump());
  expect_format_error(f, {f.vocab.string(), "<|endoftext|>"});
  v = nlohmann::json::object();
  for (int b = 1; b < 256; ++b) v[to_alphabet(std::string(1, static_cast<char>(b)))] = b - 1;
  v["<|endoftext|>"] = 255;
  write_bytes(f.vocab, v.dump());
  expect_format_error(f, {f.vocab.string(), "no token for byte 0", "256"});
}

TEST(Gpt2TokenizerFiles, MalformedMerges) {
  auto f = with_merges_text("three", "#version: 0.2\na b\nab c d\n");
  expect_format_error(f, {f.merges.string(), "line 3", "two tokens"});
  f = with_merges_text("one", "a b\nabc\n");  // no version line: ranks start at line 1
  expect_format_error(f, {"line 2", "\"abc\""});
  f = with_merges_text("unknown", "#version: 0.2\na b\nab zz\n");
  expect_format_error(f, {"line 3", "\"zz\"", "not in the vocabulary"});
  f = with_merges_text("merged", "#version: 0.2\na c\n");
  expect_format_error(f, {"line 2", "merged token \"ac\""});
  f = with_merges_text("dup", "#version: 0.2\na b\nab c\na b\n");
  expect_format_error(f, {"line 4", "second time"});
  f = with_merges_text("blank", "#version: 0.2\na b\n\nab c\n");
  expect_format_error(f, {"line 4", "empty line 3"});
  f = with_merges_text("utf8", "#version: 0.2\na \xff\n");
  expect_format_error(f, {"line 2", "UTF-8"});
  // Trailing blank lines and CRLF line ends are accepted.
  f = with_merges_text("ok", "#version: 0.2\r\na b\r\nab c\r\n\n\n");
  const auto tok = BpeTokenizer::from_files(f.vocab, f.merges);
  EXPECT_EQ(tok.encode("abc"), (Ids{257}));
}

TEST(Gpt2TokenizerFiles, MissingFileNamesIt) {
  auto f = write_small_vocab("missing", {}, {});
  fs::remove(f.merges);
  try {
    BpeTokenizer::from_files(f.vocab, f.merges);
    ADD_FAILURE() << "accepted a missing vocab.bpe";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(f.merges.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace saelab::test
