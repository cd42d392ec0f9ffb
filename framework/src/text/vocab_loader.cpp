// Builds a Vocab from encoder.json and vocab.bpe or from lists in memory (formats in
// saelab/text/bpe_tokenizer.hpp), checking everything a malformed or hostile input could get wrong
// before the encoder relies on it. Both paths share the checks below; only the way they name the
// place at fault (a JSON key or file line, a list index) differs.
#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/core/utf8.hpp"
#include "text/bpe_vocab.hpp"

namespace saelab::text::detail {

namespace {

namespace fs = std::filesystem;
constexpr std::uintmax_t kMaxFileBytes = 256ull << 20;
constexpr std::size_t kMaxTokens = std::size_t{1} << 30;
constexpr std::size_t kMaxMerges = std::size_t{1} << 30;  // ranks are int32

// GPT-2's byte-to-unicode alphabet: bytes that are printable Latin-1 stand for themselves; the
// other 68 take U+0100.. in byte order. unicode_to_byte inverts it (-1: not in the alphabet).
struct ByteAlphabet {
  std::array<char32_t, 256> to_unicode{};
  std::array<std::int16_t, 0x144> to_byte{};
  ByteAlphabet() {
    to_byte.fill(-1);
    char32_t extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_unicode[b] = printable ? char32_t(b) : extra++;
      to_byte[to_unicode[b]] = static_cast<std::int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

std::string quoted(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Decodes a token written in the byte alphabet. On failure returns false and sets `why`.
bool alphabet_to_bytes(std::string_view text, std::string& bytes, std::string& why) {
  bytes.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t valid = utf8_valid_prefix(text);
  if (valid != text.size()) {
    why = cat("is not valid UTF-8 (byte ", valid, ")");
    return false;
  }
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = p[i];
    std::size_t len = 1;
    if (cp >= 0xF0)
      cp &= 0x07, len = 4;
    else if (cp >= 0xE0)
      cp &= 0x0F, len = 3;
    else if (cp >= 0xC0)
      cp &= 0x1F, len = 2;
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    i += len;
    const int b = cp < alphabet().to_byte.size() ? alphabet().to_byte[cp] : -1;
    if (b < 0) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "U+%04X", unsigned(cp));
      why = cat("contains ", hex, ", which is not in GPT-2's byte-to-unicode alphabet");
      return false;
    }
    bytes.push_back(static_cast<char>(b));
  }
  if (bytes.empty()) {
    why = "is empty";
    return false;
  }
  return true;
}

// Fills v.by_bytes and v.byte_token once v.bytes holds every token. `where()` prefixes messages;
// duplicate(id, first) says that token `id` has the bytes of the earlier token `first`. GPT-2's
// files must hold all 256 single bytes; other vocabularies may lack some (SmolLM2's has no token
// for most C0 control bytes), and those bytes are then dropped from the text (see bpe_tokenizer.hpp).
enum class ByteCoverage { RequireAll, AllowMissing };
template <class Where, class Duplicate>
void index_tokens(Vocab& v, const Where& where, const Duplicate& duplicate, ByteCoverage coverage) {
  v.by_bytes.reserve(v.bytes.size());
  for (std::size_t id = 0; id < v.bytes.size(); ++id) {
    if (!v.by_bytes.insert(v.bytes, static_cast<std::int32_t>(id)))
      throw FormatError(where() + duplicate(id, static_cast<std::size_t>(v.find(v.bytes[id]))));
  }
  for (int b = 0; b < 256; ++b) {
    v.byte_token[b] = v.find(std::string(1, static_cast<char>(b)));
    if (v.byte_token[b] < 0) v.missing_bytes = true;
    if (v.byte_token[b] < 0 && coverage == ByteCoverage::RequireAll)
      throw FormatError(cat(where(), "there is no token for byte ", b,
                            "; a byte-level BPE vocabulary must hold all 256 single bytes"));
  }
}

// Splits a rule "left right" (one space, neither side empty); false when it is not that.
bool split_rule(std::string_view line, std::string_view& left, std::string_view& right) {
  const std::size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
      line.find(' ', space + 1) != std::string_view::npos)
    return false;
  left = line.substr(0, space);
  right = line.substr(space + 1);
  return true;
}

// Adds the rule "l r" with the given rank once v's tokens are indexed; `where()` names the rule.
template <class Where>
void add_rule(Vocab& v, const Where& where, std::string_view l, std::string_view r, std::int32_t rank) {
  std::string left, right, why;
  if (!alphabet_to_bytes(l, left, why)) throw FormatError(cat(where(), "left token ", quoted(l), " ", why));
  if (!alphabet_to_bytes(r, right, why)) throw FormatError(cat(where(), "right token ", quoted(r), " ", why));
  const std::int32_t a = v.find(left), b = v.find(right);
  const std::int32_t m = v.find(left + right);
  for (auto [tok, id] : {std::pair{l, a}, std::pair{r, b}})
    if (id < 0) throw FormatError(cat(where(), "token ", quoted(tok), " is not in the vocabulary"));
  if (m < 0)
    throw FormatError(cat(where(), "the merged token ", quoted(std::string(l) + std::string(r)),
                          " is not in the vocabulary"));
  if (!v.merges.insert(a, b, MergeRule{rank, m}))
    throw FormatError(
        cat(where(), "the rule ", quoted(std::string(l) + " " + std::string(r)), " appears a second time"));
}

// A token may not be what BPE makes of its own bytes (no rule chain reaches it); only tokens that
// are can be emitted for a matching pre-token without running BPE. Special tokens never are: their
// text is matched before BPE, or is ordinary text.
void mark_whole_tokens(Vocab& v) {
  v.whole.assign(v.bytes.size(), 0);
  std::vector<std::uint8_t> special(v.bytes.size(), 0);
  for (std::int32_t id : v.special_ids) special[static_cast<std::size_t>(id)] = 1;
  std::vector<std::int32_t> ids;
  for (std::size_t id = 0; id < v.bytes.size(); ++id) {
    if (special[id]) continue;
    ids.clear();
    bpe_merge(v, v.bytes[id], ids);
    v.whole[id] = ids.size() == 1 && ids[0] == static_cast<std::int32_t>(id);
  }
}

struct Entry {
  std::string key;
  std::uint64_t id;
};

// SAX handler accepting exactly one object of string -> non-negative integer.
class EncoderSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit EncoderSax(const fs::path& path) : path_(path) {}
  std::vector<Entry> entries;

  bool start_object(std::size_t) override {
    if (depth_ == 0 && !done_) return ++depth_, true;
    return wrong("an object");
  }
  bool end_object() override {
    depth_ = 0;
    done_ = true;
    return true;
  }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool number_unsigned(number_unsigned_t v) override { return add(v); }
  bool number_integer(number_integer_t v) override {
    if (v < 0) fail(cat("key ", quoted(key_), " has id ", v, "; ids must be >= 0"));
    return add(static_cast<std::uint64_t>(v));
  }
  bool number_float(number_float_t, const string_t& s) override { return wrong("the number " + s); }
  bool null() override { return wrong("null"); }
  bool boolean(bool) override { return wrong("a boolean"); }
  bool string(string_t&) override { return wrong("a string"); }
  bool binary(binary_t&) override { return wrong("binary data"); }
  bool start_array(std::size_t) override { return wrong("an array"); }
  bool end_array() override { return wrong("an array"); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    fail(cat("not valid JSON: ", ex.what()));
    return false;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(cat("tokenizer vocabulary '", path_.string(), "': ", what,
                          ". Expected GPT-2's encoder.json: one object {\"token\": id, ...}; "
                          "run scripts/fetch-data.sh to get the original"));
  }
  bool wrong(const std::string& what) {
    if (depth_ == 0) fail(cat("the top-level value is ", what, ", not an object"));
    fail(cat("key ", quoted(key_), " has ", what, " as its value; expected an integer id"));
  }
  bool add(std::uint64_t v) {
    if (depth_ != 1) return wrong("a number");
    entries.push_back(Entry{key_, v});
    return true;
  }
  fs::path path_;
  std::string key_;
  int depth_ = 0;
  bool done_ = false;
};

void load_encoder(const fs::path& path, Vocab& v) {
  const std::string text = read_file(path, kMaxFileBytes, "tokenizer vocabulary");
  v.vocab_sha256 = sha256_hex(text);
  EncoderSax sax(path);
  nlohmann::json::sax_parse(text, &sax);
  const auto where = [&] { return cat("tokenizer vocabulary '", path.string(), "': "); };
  const std::size_t n = sax.entries.size();
  if (n == 0) throw FormatError(where() + "the object is empty");
  if (n > kMaxTokens) throw FormatError(cat(where(), n, " entries is too many"));
  v.bytes.assign(n, std::string());
  std::vector<const std::string*> owner(n, nullptr);
  std::string bytes, why;
  for (const Entry& e : sax.entries) {
    if (e.id >= n)
      throw FormatError(cat(where(), "key ", quoted(e.key), " has id ", e.id, "; with ", n,
                            " entries the ids must be 0..", n - 1, ", each used once"));
    if (owner[e.id])
      throw FormatError(cat(where(), "id ", e.id, " is used by both ", quoted(*owner[e.id]), " and ",
                            quoted(e.key), "; each id must be used once"));
    if (!alphabet_to_bytes(e.key, bytes, why))
      throw FormatError(cat(where(), "key ", quoted(e.key), " ", why));
    owner[e.id] = &e.key;
    v.bytes[e.id] = bytes;
  }
  index_tokens(
      v, where,
      [&](std::size_t id, std::size_t) { return cat("key ", quoted(*owner[id]), " appears twice"); },
      ByteCoverage::RequireAll);
  v.eot = v.find("<|endoftext|>");
  if (v.eot < 0)
    throw FormatError(where() + "there is no \"<|endoftext|>\" entry (GPT-2 has it as id 50256)");
  v.special_ids = {v.eot};
}

// Splits vocab.bpe into lines, calling rule(line_number, left, right) for each merge line.
template <class F>
void for_each_rule(const fs::path& path, std::string_view text, F&& rule) {
  std::size_t line_no = 0, pos = 0, blank_at = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 8) == "#version") continue;
    if (line.empty()) {
      if (!blank_at) blank_at = line_no;
      continue;
    }
    const auto where = [&] { return cat("merge rules '", path.string(), "' line ", line_no, ": "); };
    if (blank_at)
      throw FormatError(
          cat(where(), "follows the empty line ", blank_at, "; empty lines are allowed only at the end"));
    std::string_view left, right;
    if (!split_rule(line, left, right))
      throw FormatError(
          cat(where(), quoted(line), " is not two tokens separated by one space (\"left right\")"));
    rule(line_no, where, left, right);
  }
}

void load_merges(const fs::path& path, Vocab& v) {
  const std::string text = read_file(path, kMaxFileBytes, "merge rules");
  v.merges_sha256 = sha256_hex(text);
  std::size_t lines = 1;
  for (char c : text) lines += c == '\n';
  v.merges.reserve(lines);
  std::int32_t rank = 0;
  for_each_rule(path, text, [&](std::size_t, const auto& where, std::string_view l, std::string_view r) {
    add_rule(v, where, l, r, rank++);
  });
}

}  // namespace

Vocab load_vocab(const fs::path& vocab_json, const fs::path& merges_txt) {
  Vocab v;
  load_encoder(vocab_json, v);
  load_merges(merges_txt, v);
  mark_whole_tokens(v);
  return v;
}

namespace {

// Checks the special ids and fills v.bytes: a special token's text is its bytes, as llama.cpp and
// HF take control and added tokens; every other token is written in the byte alphabet.
template <class Where>
void decode_memory_tokens(const BpeVocabulary& in, Vocab& v, const Where& where) {
  const std::size_t n = in.tokens.size();
  std::vector<std::int32_t> special_at(n, -1);  // token -> its index in special_ids
  for (std::size_t i = 0; i < in.special_ids.size(); ++i) {
    const std::int32_t id = in.special_ids[i];
    if (id < 0 || static_cast<std::size_t>(id) >= n)
      throw FormatError(cat(where(), "special_ids[", i, "] is ", id, "; token ids are 0..", n - 1));
    if (special_at[id] >= 0)
      throw FormatError(cat(where(), "special_ids[", i, "] repeats token ", id, " (special_ids[",
                            special_at[id], "]); each special token is named once"));
    special_at[id] = static_cast<std::int32_t>(i);
  }
  v.bytes.assign(n, std::string());
  std::string why;
  for (std::size_t id = 0; id < n; ++id) {
    const std::string& text = in.tokens[id];
    if (special_at[id] >= 0) {
      if (text.empty()) throw FormatError(cat(where(), "token ", id, " (special) is empty"));
      v.bytes[id] = text;
    } else if (!alphabet_to_bytes(text, v.bytes[id], why)) {
      throw FormatError(cat(where(), "token ", id, " ", quoted(text), " ", why));
    }
  }
  v.special_ids = in.special_ids;
}

}  // namespace

Vocab build_vocab(const BpeVocabulary& in) {
  const std::string prefix = (in.where.empty() ? std::string("in-memory BPE vocabulary") : in.where) + ": ";
  const auto where = [&] { return prefix; };
  const std::size_t n = in.tokens.size();
  if (n == 0) throw FormatError(where() + "there are no tokens");
  if (n > kMaxTokens) throw FormatError(cat(where(), n, " tokens is too many (at most ", kMaxTokens, ")"));
  if (in.merges.size() > kMaxMerges)
    throw FormatError(cat(where(), in.merges.size(), " merges is too many (at most ", kMaxMerges, ")"));
  Vocab v;
  decode_memory_tokens(in, v, where);
  index_tokens(
      v, where,
      [&](std::size_t id, std::size_t first) {
        return cat("token ", id, " ", quoted(in.tokens[id]), " has the same bytes as token ", first, " ",
                   quoted(in.tokens[first]), "; each token must be unique");
      },
      ByteCoverage::AllowMissing);
  v.eot = v.find("<|endoftext|>");
  v.merges.reserve(in.merges.size());
  for (std::size_t i = 0; i < in.merges.size(); ++i) {
    const auto rule_where = [&] { return cat(prefix, "merge ", i, ": "); };
    std::string_view left, right;
    if (!split_rule(in.merges[i], left, right))
      throw FormatError(cat(rule_where(), quoted(in.merges[i]),
                            " is not two tokens separated by one space (\"left right\")"));
    add_rule(v, rule_where, left, right, static_cast<std::int32_t>(i));
  }
  mark_whole_tokens(v);
  return v;
}

}  // namespace saelab::text::detail
