// Corpus reading and packing (saelab/data/corpus.hpp) with a stub source whose tokenizer maps each byte
// to its value, so every expected sequence below is computed by hand.
#include <random>

#include <gtest/gtest.h>

#include "saelab/data/corpus.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "tokenizer_test_util.hpp"

namespace saelab::test {
namespace {

namespace fs = std::filesystem;
using Rows = std::vector<std::vector<std::int64_t>>;
constexpr std::int32_t E = 256;  // the stub's BOS and EOS

class ByteSource : public ActivationSource {
 public:
  explicit ByteSource(std::int64_t max_context = 0, std::int32_t bos = E, std::int32_t eos = E) {
    info_.model_id = "bytes";
    info_.vocab_size = 257;
    info_.max_context = max_context;
    info_.bos_token = bos;
    info_.eos_token = eos;
  }
  const SourceInfo& info() const override { return info_; }
  std::vector<std::int32_t> tokenize(std::string_view text) const override {
    std::vector<std::int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(const std::vector<std::int32_t>& tokens) const override {
    std::string s;
    for (auto t : tokens) s += t == E ? std::string("<E>") : std::string(1, static_cast<char>(t));
    return s;
  }
  std::map<std::string, torch::Tensor> run_with_hooks(const torch::Tensor&,
                                                      const std::vector<std::string>&) override {
    throw Error("not used");
  }
  ModelOutput run_with_replacement(const torch::Tensor&, const std::string&, const HookFn&, bool) override {
    throw Error("not used");
  }
  torch::Tensor logit_effects(const torch::Tensor&, const std::string&) override { throw Error("not used"); }
  torch::Device device() const override { return torch::kCPU; }

 private:
  SourceInfo info_;
};

Rows rows_of(const torch::Tensor& t) {
  EXPECT_EQ(t.scalar_type(), torch::kInt64);
  EXPECT_EQ(t.dim(), 2);
  Rows rows;
  for (std::int64_t i = 0; i < t.size(0); ++i) {
    auto* p = t[i].contiguous().data_ptr<std::int64_t>();
    rows.emplace_back(p, p + t.size(1));
  }
  return rows;
}

CorpusConfig config_for(std::vector<fs::path> paths, std::int64_t ctx, bool bos) {
  CorpusConfig c;
  c.paths = std::move(paths);
  c.context_size = ctx;
  c.prepend_bos = bos;
  return c;
}

fs::path make_tree(const std::string& name) {
  const fs::path dir = scratch_dir("corpus-" + name);
  write_bytes(dir / "b.txt", "cde");
  write_bytes(dir / "a.txt", "ab");
  write_bytes(dir / "sub/c.txt", "f");
  write_bytes(dir / ".hidden.txt", "zzz");  // hidden: skipped
  write_bytes(dir / "notes.bin", "yyy");    // not a corpus extension: skipped in auto
  write_bytes(dir / "empty.txt", "");       // empty document: skipped
  return dir;
}

TEST(Corpus, PacksDirectoryInNameOrderWithBos) {
  const ByteSource src;
  TokenBatches tb(config_for({make_tree("bos")}, 4, true), src);
  // Stream: a b E c d e E f (a.txt, b.txt, empty.txt skipped, sub/c.txt); [BOS] + 3 each.
  EXPECT_EQ(rows_of(tb.next(10)), (Rows{{E, 'a', 'b', E}, {E, 'c', 'd', 'e'}}));
  EXPECT_EQ(tb.sequences_emitted(), 2);
  const torch::Tensor done = tb.next(10);
  EXPECT_EQ(done.size(0), 0);
  EXPECT_EQ(done.size(1), 4);
}

TEST(Corpus, PacksWithoutBosAndInSmallSteps) {
  const ByteSource src;
  TokenBatches tb(config_for({make_tree("nobos")}, 4, false), src);
  EXPECT_EQ(rows_of(tb.next(1)), (Rows{{'a', 'b', E, 'c'}}));
  EXPECT_EQ(rows_of(tb.next(1)), (Rows{{'d', 'e', E, 'f'}}));
  EXPECT_EQ(tb.next(1).size(0), 0);
  EXPECT_EQ(tb.sequences_emitted(), 2);
}

TEST(Corpus, JsonlWithTextField) {
  const fs::path dir = scratch_dir("corpus-jsonl");
  write_bytes(
      dir / "docs.jsonl",
      "{\"text\": \"hi\"}\n\n  \n{\"text\": \"\", \"x\": 1}\r\n{\"body\": \"no\", \"text\": \"yo\"}\n");
  const ByteSource src;
  TokenBatches tb(config_for({dir / "docs.jsonl"}, 2, false), src);
  EXPECT_EQ(rows_of(tb.next(9)), (Rows{{'h', 'i'}, {E, 'y'}}));
  CorpusConfig c = config_for({dir}, 3, false);
  c.text_field = "body";
  write_bytes(dir / "docs.jsonl", "{\"body\": \"no\"}\n{\"body\": \"pe\"}\n");
  TokenBatches tb2(c, src);
  EXPECT_EQ(rows_of(tb2.next(9)), (Rows{{'n', 'o', E}}));
}

TEST(Corpus, FilesInGivenOrderAndTextIsBytes) {
  const fs::path dir = scratch_dir("corpus-order");
  write_bytes(dir / "z.txt", "\xff\xfe");  // not UTF-8: plain text is bytes
  write_bytes(dir / "a.jsonl", "{\"text\": \"\\u00e9\"}\n");
  const ByteSource src;
  TokenBatches tb(config_for({dir / "z.txt", dir / "a.jsonl"}, 5, false), src);
  EXPECT_EQ(rows_of(tb.next(9)), (Rows{{0xff, 0xfe, E, 0xc3, 0xa9}}));
}

// Builds a corpus whose first JSONL document is fine and whose line `line` is `bad`.
std::string jsonl_error(const std::string& name, const std::string& bad, const std::string& field) {
  const fs::path dir = scratch_dir("corpus-bad-" + name);
  write_bytes(dir / "bad.jsonl", "{\"text\": \"ok\"}\n\n" + bad + "\n{\"text\": \"never\"}\n");
  const ByteSource src;
  CorpusConfig c = config_for({dir}, 2, false);
  c.text_field = field;
  try {
    TokenBatches tb(c, src);
    tb.next(100);
  } catch (const FormatError& e) {
    std::printf("[corpus error] %s\n", e.what());
    return e.what();
  }
  return "no error";
}

TEST(Corpus, JsonlErrorsNameFileLineAndField) {
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  std::string m = jsonl_error("json", "{\"text\": ", "text");
  EXPECT_TRUE(has(m, "bad.jsonl:3:") && has(m, "not valid JSON")) << m;
  m = jsonl_error("missing", "{\"title\": \"t\", \"id\": 4}", "text");
  EXPECT_TRUE(has(m, "bad.jsonl:3:") && has(m, "no field \"text\"") && has(m, "id, title")) << m;
  m = jsonl_error("custom", "{\"text\": \"t\"}", "content");
  EXPECT_TRUE(has(m, "bad.jsonl:1:") && has(m, "no field \"content\"")) << m;
  m = jsonl_error("number", "{\"text\": 5}", "text");
  EXPECT_TRUE(has(m, "bad.jsonl:3:") && has(m, "\"text\" is a number") && has(m, "string")) << m;
  m = jsonl_error("array", "[\"text\"]", "text");
  EXPECT_TRUE(has(m, "bad.jsonl:3:") && has(m, "array") && has(m, "not an object")) << m;
  m = jsonl_error("overflow", "{\"text\": 1e999}", "text");  // nlohmann's out_of_range, not parse_error
  EXPECT_TRUE(has(m, "bad.jsonl:3:") && has(m, "not valid JSON") && has(m, "number overflow")) << m;
  m = jsonl_error("utf8", "{\"text\": \"caf\xe9\"}", "text");
  EXPECT_TRUE(has(m, "bad.jsonl:3:") && has(m, "not valid UTF-8")) << m;
}

TEST(Corpus, ConfigErrors) {
  const ByteSource src;
  const fs::path dir = make_tree("config");
  auto message = [&](CorpusConfig c, const ActivationSource& s) -> std::string {
    try {
      TokenBatches tb(c, s);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(config_for({dir / "nope"}, 4, true), src).find("nope' does not exist"),
            std::string::npos);
  CorpusConfig c = config_for({dir}, 4, true);
  c.format = "csv";
  EXPECT_NE(message(c, src).find("'csv' is not one of: auto, text, jsonl"), std::string::npos);
  EXPECT_NE(message(config_for({dir}, 1, true), src).find("at least 2"), std::string::npos);
  EXPECT_NE(message(config_for({dir}, 9, true), ByteSource(8)).find("at most 8"), std::string::npos);
  EXPECT_NE(message(config_for({dir}, 4, true), ByteSource(0, -1)).find("no BOS"), std::string::npos);
  const fs::path empty = scratch_dir("corpus-empty");
  write_bytes(empty / "data.csv", "x");
  EXPECT_NE(message(config_for({empty}, 4, true), src).find("no files to read"), std::string::npos);
}

TEST(Corpus, AllowSpecialTokensTurnsEosTextIntoEos) {
  const fs::path dir = scratch_dir("corpus-special");
  write_bytes(dir / "d.txt", "a<E>b");
  const ByteSource src;
  CorpusConfig c = config_for({dir}, 3, false);
  c.allow_special_tokens = true;
  EXPECT_EQ(rows_of(TokenBatches(c, src).next(9)), (Rows{{'a', E, 'b'}}));
  c.allow_special_tokens = false;  // the text stays bytes: a < E > b, the last two dropped
  EXPECT_EQ(rows_of(TokenBatches(c, src).next(9)), (Rows{{'a', '<', 'E'}}));
}

TEST(Corpus, SkipEqualsReadingAndDiscarding) {
  const fs::path dir = scratch_dir("corpus-skip");
  std::mt19937 rng(3);
  for (int f = 0; f < 7; ++f) {
    std::string jsonl;
    for (int d = 0; d < 5; ++d)
      jsonl += "{\"text\": \"" + std::string(rng() % 40, static_cast<char>('a' + rng() % 26)) + "\"}\n";
    write_bytes(dir / ("f" + std::to_string(f) + ".jsonl"), jsonl);
    write_bytes(dir / ("t" + std::to_string(f) + ".txt"), std::string(rng() % 50, 'x'));
  }
  const ByteSource src;
  const CorpusConfig cfg = config_for({dir}, 8, true);
  const Rows all = rows_of(TokenBatches(cfg, src).next(100000));
  ASSERT_GT(all.size(), 20u);
  for (std::size_t k :
       {std::size_t{0}, std::size_t{1}, std::size_t{5}, all.size() - 1, all.size(), all.size() + 3}) {
    TokenBatches tb(cfg, src);
    tb.skip(static_cast<std::int64_t>(k));
    EXPECT_EQ(tb.sequences_emitted(), static_cast<std::int64_t>(std::min(k, all.size())));
    const Rows rest = rows_of(tb.next(100000));
    EXPECT_EQ(rest, Rows(all.begin() + static_cast<std::ptrdiff_t>(std::min(k, all.size())), all.end()))
        << "skip(" << k << ")";
  }
  // Interleaving next and skip gives the same as one long read.
  TokenBatches tb(cfg, src);
  Rows mixed = rows_of(tb.next(3));
  tb.skip(4);
  const Rows tail = rows_of(tb.next(100000));
  EXPECT_EQ(Rows(all.begin(), all.begin() + 3), mixed);
  EXPECT_EQ(Rows(all.begin() + 7, all.end()), tail);
  std::printf("[corpus] %zu sequences; skip(k)+next == next()[k:] for k in {0,1,5,n-1,n,n+3}\n", all.size());
}

TEST(Corpus, FingerprintIsNamesAndContents) {
  const fs::path dir = scratch_dir("corpus-fp");
  write_bytes(dir / "a.txt", "ab");
  write_bytes(dir / "sub/c.jsonl", "{\"text\": \"c\"}\n");
  const ByteSource src;
  const std::string fp = TokenBatches(config_for({dir}, 4, true), src).fingerprint();
  const std::string expect = sha256_hex(std::string("a.txt\0"
                                                    "2\0"
                                                    "ab",
                                                    10) +
                                        std::string("sub/c.jsonl\0"
                                                    "14\0",
                                                    15) +
                                        "{\"text\": \"c\"}\n");
  EXPECT_EQ(fp, expect);
  EXPECT_EQ(TokenBatches(config_for({dir}, 16, false), src).fingerprint(), fp);  // not the config
  write_bytes(dir / "a.txt", "ac");
  EXPECT_NE(TokenBatches(config_for({dir}, 4, true), src).fingerprint(), fp);
  write_bytes(dir / "a.txt", "ab");
  fs::rename(dir / "a.txt", dir / "b.txt");
  EXPECT_NE(TokenBatches(config_for({dir}, 4, true), src).fingerprint(), fp);
}

// The bundled corpus through the real GPT-2 tokenizer: the packed stream is every address's ids,
// joined with <|endoftext|>, 127 at a time after a BOS.
class Gpt2TextSource : public ByteSource {
 public:
  Gpt2TextSource() : ByteSource(1024, 50256, 50256) {}
  std::vector<std::int32_t> tokenize(std::string_view text) const override {
    return gpt2_tokenizer().encode(text);
  }
};

TEST(Corpus, BundledCorpusWithGpt2Tokenizer) {
  SAELAB_REQUIRE_GPT2_DATA();
  Gpt2TextSource src;
  std::vector<std::int64_t> stream;
  for (const fs::path& f : sotu_files()) {
    if (!stream.empty()) stream.push_back(50256);
    for (auto id : gpt2_tokenizer().encode(read_bytes(f))) stream.push_back(id);
  }
  TokenBatches tb(config_for({sotu_dir()}, 128, true), src);
  std::size_t n = 0, mismatches = 0;
  for (torch::Tensor t = tb.next(512); t.size(0) > 0; t = tb.next(512)) {
    for (const auto& row : rows_of(t)) {
      std::vector<std::int64_t> expect{50256};
      expect.insert(expect.end(), stream.begin() + static_cast<std::ptrdiff_t>(n * 127),
                    stream.begin() + static_cast<std::ptrdiff_t>((n + 1) * 127));
      mismatches += row != expect;
      ++n;
    }
  }
  std::printf("[corpus] bundled corpus: %zu stream tokens -> %zu sequences of 128, %zu mismatches\n",
              stream.size(), n, mismatches);
  EXPECT_EQ(n, stream.size() / 127);
  EXPECT_EQ(mismatches, 0u);
}

}  // namespace
}  // namespace saelab::test
