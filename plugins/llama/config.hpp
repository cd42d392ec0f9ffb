#pragma once
// Llama-architecture hyper-parameters, read from a GGUF file's metadata.
//
// Keys (ARCH = general.architecture, which must be "llama"):
//   ARCH.block_count                     n_layer
//   ARCH.embedding_length                d_model
//   ARCH.feed_forward_length             d_mlp (SwiGLU hidden width)
//   ARCH.attention.head_count            n_head
//   ARCH.attention.head_count_kv         n_head_kv (grouped-query attention); default n_head
//   ARCH.attention.key_length            head_dim; default d_model / n_head
//   ARCH.attention.layer_norm_rms_epsilon  RMSNorm epsilon (required)
//   ARCH.rope.freq_base                  rotary base (required: SmolLM2 uses 100000, not the
//                                        10000 of the first Llama, so it is never assumed)
//   ARCH.rope.dimension_count            rotated dimensions per head; default head_dim
//   ARCH.context_length                  the longest context
// Rotary scaling (ARCH.rope.scaling.type other than "none", or a rope_freqs.weight tensor) is
// refused: it changes the frequencies and is not implemented.
// vocab_size comes from token_embd.weight, and tied_head is true when output.weight is absent.
// The file is untrusted: a missing key, a wrong type or an inconsistent size is a FormatError
// naming the file and the key.
#include <cstdint>
#include <string>

#include "saelab/formats/gguf.hpp"

namespace saelab::llama {

struct Config {
  std::int64_t n_layer = 0;
  std::int64_t d_model = 0;
  std::int64_t d_mlp = 0;
  std::int64_t n_head = 0;
  std::int64_t n_head_kv = 0;
  std::int64_t head_dim = 0;
  std::int64_t rope_dim = 0;
  std::int64_t vocab_size = 0;
  std::int64_t context_length = 0;
  double rope_base = 0;
  double rms_eps = 0;
  bool tied_head = true;

  std::int64_t q_width() const { return n_head * head_dim; }
  std::int64_t kv_width() const { return n_head_kv * head_dim; }
  std::int64_t group() const { return n_head / n_head_kv; }  // query heads per KV head
};

Config read_config(const gguf::File& file);

}  // namespace saelab::llama
