#include "config.hpp"

#include "saelab/core/error.hpp"

namespace saelab::llama {
namespace {

// A positive integer key, bounded so that products of sizes cannot overflow.
std::int64_t size_key(const gguf::File& f, const std::string& key, std::int64_t max) {
  const std::uint64_t v = f.get_u64(key);
  SAELAB_CHECK(v >= 1 && v <= static_cast<std::uint64_t>(max), FormatError, "llama: '", f.path().string(),
               "': ", key, " = ", v, " is out of range; allowed: 1 .. ", max);
  return static_cast<std::int64_t>(v);
}

std::int64_t size_key_or(const gguf::File& f, const std::string& key, std::int64_t max,
                         std::int64_t fallback) {
  return f.find(key) ? size_key(f, key, max) : fallback;
}

void check(bool ok, const gguf::File& f, const std::string& what) {
  SAELAB_CHECK(ok, FormatError, "llama: '", f.path().string(), "': ", what);
}

void refuse_rope_scaling(const gguf::File& f, const std::string& arch) {
  const std::string key = arch + ".rope.scaling.type";
  if (f.find(key)) {
    const std::string type = f.get_string(key);
    check(type == "none", f, cat(key, " = '", type, "': rotary scaling is not supported (only 'none')"));
  }
  check(!f.find_tensor("rope_freqs.weight"), f,
        "holds rope_freqs.weight (Llama-3 rotary frequency factors), which is not supported");
}

}  // namespace

Config read_config(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  check(arch == "llama", f,
        cat("general.architecture is '", arch, "'; the llama source reads 'llama' files only"));
  const std::string p = arch + ".";
  Config c;
  c.n_layer = size_key(f, p + "block_count", 4096);
  c.d_model = size_key(f, p + "embedding_length", 1 << 16);
  c.d_mlp = size_key(f, p + "feed_forward_length", 1 << 18);
  c.n_head = size_key(f, p + "attention.head_count", 4096);
  c.n_head_kv = size_key_or(f, p + "attention.head_count_kv", 4096, c.n_head);
  check(c.n_head % c.n_head_kv == 0, f,
        cat("attention.head_count = ", c.n_head,
            " is not a multiple of attention.head_count_kv = ", c.n_head_kv));
  check(c.d_model % c.n_head == 0 || f.find(p + "attention.key_length"), f,
        cat("embedding_length = ", c.d_model, " is not a multiple of attention.head_count = ", c.n_head));
  c.head_dim = size_key_or(f, p + "attention.key_length", 1 << 12, c.d_model / c.n_head);
  c.rope_dim = size_key_or(f, p + "rope.dimension_count", c.head_dim, c.head_dim);
  check(c.rope_dim % 2 == 0, f,
        cat("rope.dimension_count = ", c.rope_dim, " is odd; rotary pairs need an even count"));
  c.context_length = size_key(f, p + "context_length", 1 << 24);
  c.rope_base = f.get_f32(p + "rope.freq_base");
  check(c.rope_base > 1, f, cat("rope.freq_base = ", c.rope_base, " must be > 1"));
  c.rms_eps = f.get_f32(p + "attention.layer_norm_rms_epsilon");
  check(c.rms_eps > 0 && c.rms_eps < 1, f,
        cat("attention.layer_norm_rms_epsilon = ", c.rms_eps, " is out of range; allowed: (0, 1)"));
  refuse_rope_scaling(f, arch);
  const auto embd = gguf::torch_shape(f.tensor("token_embd.weight"));
  check(embd.size() == 2 && embd[1] == c.d_model, f,
        cat("token_embd.weight has torch shape ", at::IntArrayRef(embd), ", expected [vocab, ", c.d_model,
            "]"));
  c.vocab_size = embd[0];
  c.tied_head = f.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace saelab::llama
