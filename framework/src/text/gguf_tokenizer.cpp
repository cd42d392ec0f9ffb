#include "saelab/text/gguf_tokenizer.hpp"

#include "saelab/core/error.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab::text {
namespace {

constexpr const char* kPrefix = "tokenizer.ggml.";

std::int32_t optional_id(const gguf::File& f, const std::string& name, std::size_t n_tokens) {
  const std::string key = kPrefix + name;
  if (!f.find(key)) return -1;
  const std::uint64_t id = f.get_u64(key);
  SAELAB_CHECK(id < n_tokens, FormatError, "gguf: '", f.path().string(), "': ", key, " = ", id,
               " is not a token id (the vocabulary has ", n_tokens, " tokens)");
  return static_cast<std::int32_t>(id);
}

// What identifies the tokenizer: its vocabulary, merges and token types, not the weights.
std::string identity(const BpeVocabulary& v, const std::vector<std::int32_t>& types) {
  std::string s;
  for (const auto& t : v.tokens) (s += t) += '\0';
  s += '\1';
  for (const auto& m : v.merges) (s += m) += '\0';
  s += '\1';
  for (std::int32_t t : types) s += std::to_string(t) + ",";
  return sha256_hex(s);
}

}  // namespace

GgufTokenizer load_gguf_tokenizer(const gguf::File& f) {
  const std::string where = cat(f.path().string(), ": tokenizer.ggml");
  const std::string model = f.get_string(std::string(kPrefix) + "model");
  SAELAB_CHECK(model == "gpt2", FormatError, "gguf: '", f.path().string(), "': tokenizer.ggml.model is '",
               model, "'; saelab reads byte-level BPE vocabularies ('gpt2') only");
  BpeVocabulary v;
  v.tokens = f.get_string_array(std::string(kPrefix) + "tokens");
  v.merges = f.get_string_array(std::string(kPrefix) + "merges");
  const std::string pre_key = std::string(kPrefix) + "pre";
  v.pretokenizer = parse_pretokenizer(f.find(pre_key) ? f.get_string(pre_key) : "gpt2", where + ".pre");
  std::vector<std::int32_t> types;
  if (f.find(std::string(kPrefix) + "token_type")) {
    types = f.get_i32_array(std::string(kPrefix) + "token_type");
    SAELAB_CHECK(types.size() == v.tokens.size(), FormatError, "gguf: '", f.path().string(),
                 "': tokenizer.ggml.token_type has ", types.size(), " entries for ", v.tokens.size(),
                 " tokens");
    for (std::size_t i = 0; i < types.size(); ++i)
      if (types[i] == 3) v.special_ids.push_back(static_cast<std::int32_t>(i));
  }
  v.where = where;
  v.identity = identity(v, types);
  GgufTokenizer out{BpeTokenizer::from_vocabulary(v)};
  out.bos = optional_id(f, "bos_token_id", v.tokens.size());
  out.eos = optional_id(f, "eos_token_id", v.tokens.size());
  out.unk = optional_id(f, "unknown_token_id", v.tokens.size());
  const std::string add_bos = std::string(kPrefix) + "add_bos_token";
  out.add_bos = f.find(add_bos) ? f.get_bool(add_bos) : false;
  return out;
}

}  // namespace saelab::text
