#include "tokenizer.hpp"

#include "pretokenizer.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/core/utf8.hpp"
#include "bpe_vocab.hpp"

namespace saelab::gpt2 {

struct Tokenizer::Impl {
  detail::Vocab vocab;
  detail::PreTokenizer pretokenizer;
  std::string identity;

  // Encodes text in which "<|endoftext|>" is ordinary text.
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
        // A byte that starts no well-formed character: its own pre-token (see tokenizer.hpp).
        out.push_back(vocab.byte_token[static_cast<unsigned char>(text[pos])]);
        ++pos;
      }
    }
  }
};

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json,
                                const std::filesystem::path& merges_txt) {
  auto impl = std::make_shared<Impl>();
  impl->vocab = detail::load_vocab(vocab_json, merges_txt);
  impl->identity =
      sha256_hex(cat("gpt2-bpe\n", impl->vocab.vocab_sha256, "\n", impl->vocab.merges_sha256, "\n"));
  return Tokenizer(std::move(impl));
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 4 + 8);
  if (!allow_special) {
    impl_->encode_ordinary(text, out);
    return out;
  }
  static constexpr std::string_view kEot = "<|endoftext|>";
  std::size_t pos = 0;
  for (;;) {
    const std::size_t hit = text.find(kEot, pos);
    impl_->encode_ordinary(text.substr(pos, hit == std::string_view::npos ? hit : hit - pos), out);
    if (hit == std::string_view::npos) break;
    out.push_back(impl_->vocab.eot);
    pos = hit + kEot.size();
  }
  return out;
}

namespace {

const std::string& checked_bytes(const detail::Vocab& vocab, std::int32_t id) {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab.bytes.size())
    throw Error(
        cat("GPT-2 tokenizer: token id ", id, " is outside the vocabulary [0, ", vocab.bytes.size(), ")"));
  return vocab.bytes[static_cast<std::size_t>(id)];
}

}  // namespace

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::size_t total = 0;
  for (std::int32_t id : ids) total += checked_bytes(impl_->vocab, id).size();
  std::string out;
  out.reserve(total);
  for (std::int32_t id : ids) out += impl_->vocab.bytes[static_cast<std::size_t>(id)];
  return out;
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  return checked_bytes(impl_->vocab, id);
}

std::int32_t Tokenizer::eot() const {
  return impl_->vocab.eot;
}

std::int64_t Tokenizer::vocab_size() const {
  return static_cast<std::int64_t>(impl_->vocab.bytes.size());
}

std::string Tokenizer::sha256() const {
  return impl_->identity;
}

}  // namespace saelab::gpt2
