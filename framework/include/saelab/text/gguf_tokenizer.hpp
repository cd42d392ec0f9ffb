#pragma once
// The byte-level BPE tokenizer a GGUF file carries (llama.cpp's "gpt2" tokenizer model).
//
// Keys read (all under tokenizer.ggml.):
//   model           "gpt2" (byte-level BPE). SentencePiece ("llama") and others are refused.
//   pre             pre-tokenizer name: "gpt2" or "smollm" (see bpe_tokenizer.hpp); default "gpt2"
//   tokens          [string]  id -> token text in GPT-2's byte-to-unicode alphabet
//   merges          [string]  "left right", best first
//   token_type      [i32]     optional; 3 = control: matched literally in text before BPE
//   bos_token_id, eos_token_id, unknown_token_id   optional u32 ids, each < the token count
//   add_bos_token   optional bool, default false
// SmolLM2-135M: pre "smollm", 49152 tokens, 48900 merges, 17 control tokens (ids 0-16), BOS 1
// <|im_start|>, EOS 2 <|im_end|>, unk 0 <|endoftext|>, add_bos_token false.
// A malformed vocabulary is a FormatError naming the file and the key.
#include <cstdint>

#include "saelab/core/export.hpp"
#include "saelab/formats/gguf.hpp"
#include "saelab/text/bpe_tokenizer.hpp"

namespace saelab::text {

struct SAELAB_API GgufTokenizer {
  BpeTokenizer tokenizer;
  std::int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false;
};

SAELAB_API GgufTokenizer load_gguf_tokenizer(const gguf::File& file);

}  // namespace saelab::text
