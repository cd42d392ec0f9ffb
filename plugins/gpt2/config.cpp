#include "config.hpp"

#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"

namespace saelab::gpt2 {
namespace {

using nlohmann::json;

// Upper bounds far above any GPT-2 (XL: 48 layers, 25 heads, 1600 wide) that still keep a hostile
// file from asking for absurd allocations before the weights are even looked at.
constexpr std::int64_t kMaxLayers = 1024, kMaxHeads = 1024, kMaxEmbd = 65536, kMaxPositions = 1 << 20,
                       kMaxVocab = 1 << 24, kMaxInner = 1 << 20;

std::int64_t get_int(const json& j, const char* key, const std::string& where, bool required,
                     std::int64_t def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    SAELAB_CHECK(!required, FormatError, where, ": required key '", key,
                 "' is missing (a GPT-2 config.json has n_layer, n_head, n_embd, n_positions, "
                 "vocab_size)");
    return def;
  }
  SAELAB_CHECK(it->is_number_integer(), FormatError, where, ": '", key, "' must be an integer, got ",
               it->dump());
  return it->get<std::int64_t>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  SAELAB_CHECK(it->is_boolean(), FormatError, where, ": '", key, "' must be true or false, got ", it->dump());
  return it->get<bool>();
}

void check_range(std::int64_t v, const char* key, std::int64_t lo, std::int64_t hi,
                 const std::string& where) {
  SAELAB_CHECK(v >= lo && v <= hi, FormatError, where, ": '", key, "' = ", v, " is out of range; allowed ",
               lo, " .. ", hi);
}

Activation parse_activation(const json& j, const std::string& where) {
  auto it = j.find("activation_function");
  if (it == j.end() || it->is_null()) return Activation::GeluTanh;
  SAELAB_CHECK(it->is_string(), FormatError, where, ": 'activation_function' must be a string, got ",
               it->dump());
  const auto s = it->get<std::string>();
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast") return Activation::GeluTanh;
  if (s == "gelu") return Activation::GeluErf;
  if (s == "relu") return Activation::Relu;
  throw FormatError(cat(where, ": activation_function '", s,
                        "' is not supported; allowed: gelu_new, gelu_pytorch_tanh, gelu_fast, "
                        "gelu, relu"));
}

}  // namespace

void Config::validate(const std::string& where) const {
  check_range(n_layer, "n_layer", 1, kMaxLayers, where);
  check_range(n_head, "n_head", 1, kMaxHeads, where);
  check_range(n_embd, "n_embd", 1, kMaxEmbd, where);
  check_range(n_positions, "n_positions", 1, kMaxPositions, where);
  check_range(vocab_size, "vocab_size", 1, kMaxVocab, where);
  check_range(n_inner, "n_inner", 0, kMaxInner, where);
  SAELAB_CHECK(n_embd % n_head == 0, FormatError, where, ": n_embd = ", n_embd,
               " is not divisible by n_head = ", n_head, "; every head must get n_embd / n_head dimensions");
  SAELAB_CHECK(layer_norm_epsilon > 0 && layer_norm_epsilon < 1, FormatError, where,
               ": 'layer_norm_epsilon' = ", layer_norm_epsilon, " must lie in (0, 1)");
  check_range(bos(), "bos_token_id", 0, vocab_size - 1, where);
  check_range(eos(), "eos_token_id", 0, vocab_size - 1, where);
}

Config parse_config(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw FormatError(cat(where, ": not valid JSON (", e.what(), ")"));
  }
  SAELAB_CHECK(j.is_object(), FormatError, where, ": expected a JSON object, got ", j.type_name());
  if (auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    SAELAB_CHECK(it->is_string() && it->get<std::string>() == "gpt2", FormatError, where, ": model_type is ",
                 it->dump(), "; the gpt2 source loads only model_type \"gpt2\"");
  }
  SAELAB_CHECK(!get_bool(j, "add_cross_attention", where, false), FormatError, where,
               ": add_cross_attention = true (an encoder-decoder GPT-2) is not supported");
  Config c;
  c.n_layer = get_int(j, "n_layer", where, true, 0);
  c.n_head = get_int(j, "n_head", where, true, 0);
  c.n_embd = get_int(j, "n_embd", where, true, 0);
  c.vocab_size = get_int(j, "vocab_size", where, true, 0);
  const bool has_positions = j.contains("n_positions") && !j["n_positions"].is_null();
  const bool only_ctx = !has_positions && j.contains("n_ctx") && !j["n_ctx"].is_null();
  c.n_positions = get_int(j, only_ctx ? "n_ctx" : "n_positions", where, true, 0);
  c.n_inner = get_int(j, "n_inner", where, false, 0);
  if (auto it = j.find("layer_norm_epsilon"); it != j.end() && !it->is_null()) {
    SAELAB_CHECK(it->is_number(), FormatError, where, ": 'layer_norm_epsilon' must be a number, got ",
                 it->dump());
    c.layer_norm_epsilon = it->get<double>();
  }
  c.activation = parse_activation(j, where);
  c.scale_attn_weights = get_bool(j, "scale_attn_weights", where, true);
  c.scale_attn_by_inverse_layer_idx = get_bool(j, "scale_attn_by_inverse_layer_idx", where, false);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, true);
  c.bos_token_id = get_int(j, "bos_token_id", where, false, -1);
  c.eos_token_id = get_int(j, "eos_token_id", where, false, -1);
  c.validate(where);
  return c;
}

Config read_config(const std::filesystem::path& path) {
  // A GPT-2 config is about 1 KB; 1 MB is generous and keeps a wrong file from being slurped.
  return parse_config(read_file(path, 1 << 20, "model config"), path.string());
}

std::string config_to_json(const Config& c) {
  json j = {{"model_type", "gpt2"},
            {"architectures", {"GPT2LMHeadModel"}},
            {"n_layer", c.n_layer},
            {"n_head", c.n_head},
            {"n_embd", c.n_embd},
            {"n_positions", c.n_positions},
            {"n_ctx", c.n_positions},
            {"vocab_size", c.vocab_size},
            {"n_inner", c.n_inner > 0 ? json(c.n_inner) : json(nullptr)},
            {"layer_norm_epsilon", c.layer_norm_epsilon},
            {"scale_attn_weights", c.scale_attn_weights},
            {"scale_attn_by_inverse_layer_idx", c.scale_attn_by_inverse_layer_idx},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"bos_token_id", c.bos()},
            {"eos_token_id", c.eos()},
            {"initializer_range", 0.02},
            {"embd_pdrop", 0.0},
            {"attn_pdrop", 0.0},
            {"resid_pdrop", 0.0}};
  const char* act = c.activation == Activation::GeluTanh  ? "gelu_new"
                    : c.activation == Activation::GeluErf ? "gelu"
                                                          : "relu";
  j["activation_function"] = act;
  return j.dump(2) + "\n";
}

}  // namespace saelab::gpt2
