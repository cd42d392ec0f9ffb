#include "saelab/text/bpe_tokenizer.hpp"

#include <algorithm>
#include <array>

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/core/utf8.hpp"
#include "text/bpe_vocab.hpp"
#include "text/pretokenizer.hpp"

namespace saelab::text {

namespace {

struct Special {
  std::string_view text;  // into Vocab::bytes
  std::int32_t id;
};

// Where special tokens occur: the leftmost occurrence of any, the longest of those starting there
// (HF's leftmost-longest matching).
class SpecialMatcher {
 public:
  void build(const detail::Vocab& vocab) {
    for (std::int32_t id : vocab.special_ids)
      specials_.push_back(Special{vocab.bytes[static_cast<std::size_t>(id)], id});
    std::stable_sort(specials_.begin(), specials_.end(),
                     [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
    for (const Special& s : specials_) {
      const auto c = static_cast<unsigned char>(s.text[0]);
      if (!starts_[c]) first_bytes_.push_back(static_cast<char>(c));
      starts_[c] = true;
    }
  }
  bool empty() const { return specials_.empty(); }

  // The first special at or after `pos`: its offset and which one; {npos, nullptr} when none.
  std::pair<std::size_t, const Special*> find(std::string_view text, std::size_t pos) const {
    for (;;) {
      // One distinct first byte (GPT-2's '<', and most vocabularies') lets memchr do the scan.
      pos = first_bytes_.size() == 1 ? text.find(first_bytes_[0], pos) : next_start(text, pos);
      if (pos == std::string_view::npos) return {pos, nullptr};
      for (const Special& s : specials_)
        if (text.compare(pos, s.text.size(), s.text) == 0) return {pos, &s};
      ++pos;
    }
  }

 private:
  std::size_t next_start(std::string_view text, std::size_t pos) const {
    for (; pos < text.size(); ++pos)
      if (starts_[static_cast<unsigned char>(text[pos])]) return pos;
    return std::string_view::npos;
  }
  std::vector<Special> specials_;  // longest first
  std::array<bool, 256> starts_{};
  std::string first_bytes_;
};

}  // namespace

struct BpeTokenizer::Impl {
  explicit Impl(detail::Vocab v, PreTokenizerKind kind, std::string label_, std::string identity_)
      : vocab(std::move(v)),
        pretokenizer(kind),
        kind(kind),
        label(std::move(label_)),
        identity(std::move(identity_)) {
    specials.build(vocab);
  }
  detail::Vocab vocab;
  detail::PreTokenizer pretokenizer;
  PreTokenizerKind kind;
  SpecialMatcher specials;
  std::string label;  // names the tokenizer in errors: "GPT-2 tokenizer"
  std::string identity;

  // Encodes text in which special tokens' text is ordinary text.
  void encode_ordinary(std::string_view text, std::vector<std::int32_t>& out) const {
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t valid = utf8_valid_prefix(text.substr(pos));
      if (valid > 0) {
        pretokenizer.split(text.substr(pos, valid),
                           [&](std::string_view piece) { detail::bpe_encode(vocab, piece, out); });
        pos += valid;
      }
      if (pos < text.size()) {
        // A byte that starts no well-formed character: its own pre-token (see bpe_tokenizer.hpp).
        const std::int32_t id = vocab.byte_token[static_cast<unsigned char>(text[pos])];
        if (id >= 0) out.push_back(id);  // a byte with no token is dropped, as in bpe_encode
        ++pos;
      }
    }
  }
};

BpeTokenizer::BpeTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

BpeTokenizer BpeTokenizer::from_files(const std::filesystem::path& vocab_json,
                                      const std::filesystem::path& merges_txt) {
  detail::Vocab vocab = detail::load_vocab(vocab_json, merges_txt);
  std::string identity = sha256_hex(cat("gpt2-bpe\n", vocab.vocab_sha256, "\n", vocab.merges_sha256, "\n"));
  return BpeTokenizer(std::make_shared<Impl>(std::move(vocab), PreTokenizerKind::Gpt2, "GPT-2 tokenizer",
                                             std::move(identity)));
}

BpeTokenizer BpeTokenizer::from_vocabulary(const BpeVocabulary& v) {
  // Without an identity every in-memory tokenizer would share one sha256(), and a cache keyed on
  // it could not tell two vocabularies apart.
  if (v.identity.empty())
    throw Error(cat(v.where.empty() ? std::string("in-memory BPE vocabulary") : v.where,
                    ": no identity given; set BpeVocabulary::identity to what identifies the vocabulary "
                    "(e.g. its file's SHA-256)"));
  detail::Vocab vocab = detail::build_vocab(v);
  std::string identity =
      sha256_hex(cat("bpe-vocabulary\n", pretokenizer_name(v.pretokenizer), "\n", v.identity, "\n"));
  std::string label = cat("tokenizer from ", v.where.empty() ? std::string("memory") : v.where);
  return BpeTokenizer(
      std::make_shared<Impl>(std::move(vocab), v.pretokenizer, std::move(label), std::move(identity)));
}

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 4 + 8);
  if (!allow_special || impl_->specials.empty()) {
    impl_->encode_ordinary(text, out);
    return out;
  }
  std::size_t pos = 0;
  for (;;) {
    const auto [hit, special] = impl_->specials.find(text, pos);
    impl_->encode_ordinary(text.substr(pos, hit == std::string_view::npos ? hit : hit - pos), out);
    if (!special) break;
    out.push_back(special->id);
    pos = hit + special->text.size();
  }
  return out;
}

namespace {

const std::string& checked_bytes(const detail::Vocab& vocab, const std::string& label, std::int32_t id) {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab.bytes.size())
    throw Error(cat(label, ": token id ", id, " is outside the vocabulary [0, ", vocab.bytes.size(), ")"));
  return vocab.bytes[static_cast<std::size_t>(id)];
}

}  // namespace

std::string BpeTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::size_t total = 0;
  for (std::int32_t id : ids) total += checked_bytes(impl_->vocab, impl_->label, id).size();
  std::string out;
  out.reserve(total);
  for (std::int32_t id : ids) out += impl_->vocab.bytes[static_cast<std::size_t>(id)];
  return out;
}

std::string BpeTokenizer::token_bytes(std::int32_t id) const {
  return checked_bytes(impl_->vocab, impl_->label, id);
}

std::int32_t BpeTokenizer::eot() const {
  return impl_->vocab.eot;
}

std::int64_t BpeTokenizer::vocab_size() const {
  return static_cast<std::int64_t>(impl_->vocab.bytes.size());
}

const std::vector<std::int32_t>& BpeTokenizer::special_ids() const {
  return impl_->vocab.special_ids;
}

PreTokenizerKind BpeTokenizer::pretokenizer() const {
  return impl_->kind;
}

std::string BpeTokenizer::sha256() const {
  return impl_->identity;
}

PreTokenizerKind parse_pretokenizer(std::string_view name, std::string_view where) {
  for (PreTokenizerKind k : {PreTokenizerKind::Gpt2, PreTokenizerKind::SmolLM})
    if (name == pretokenizer_name(k)) return k;
  throw FormatError(cat(where, ": pre-tokenizer \"", name,
                        "\" is not supported; the byte-level BPE pre-tokenizers saelab has are "
                        "\"gpt2\" and \"smollm\""));
}

std::string_view pretokenizer_name(PreTokenizerKind kind) {
  return kind == PreTokenizerKind::SmolLM ? "smollm" : "gpt2";
}

}  // namespace saelab::text
