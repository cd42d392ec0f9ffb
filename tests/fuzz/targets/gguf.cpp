// GGUF: the header, metadata and tensor table, every typed metadata getter on every key, the
// dequantization of every tensor of a supported type, and the tokenizer the metadata describes.
#include "../fuzz_support.hpp"
#include "saelab/formats/gguf.hpp"
#include "saelab/text/gguf_tokenizer.hpp"

namespace {
using saelab::fuzz::expect_clear_error;

constexpr std::uint64_t kMaxDequantElements = std::uint64_t(1) << 20;

void read_every_key(const saelab::gguf::File& f) {
  for (const auto& kv : f.metadata()) {
    (void)kv.value.describe();
    expect_clear_error("gguf", [&] { (void)f.get_u32(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_u64(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_i64(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_f32(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_bool(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_string(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_string_array(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_i32_array(kv.key); });
    expect_clear_error("gguf", [&] { (void)f.get_f32_array(kv.key); });
  }
}
}  // namespace

SAELAB_FUZZ_TARGET("gguf") {
  const auto path = saelab::fuzz::fresh_dir() / "input.gguf";
  saelab::fuzz::write_file(path, {reinterpret_cast<const char*>(data), size});
  const saelab::gguf::File f(path);
  read_every_key(f);
  for (const auto& t : f.tensors()) {
    (void)saelab::gguf::torch_shape(t);
    if (!saelab::gguf::can_dequantize(t.type) || t.n_elements > kMaxDequantElements) continue;
    expect_clear_error("gguf", [&] { (void)saelab::gguf::load_f32(f, t.name).sum(); });
  }
  if (f.find("tokenizer.ggml.model") == nullptr) return;
  const auto tok = saelab::text::load_gguf_tokenizer(f);
  const std::string text = "Hello, world! 123 <|im_start|> \xc3\xa9\xe2\x82\xac";
  (void)tok.tokenizer.decode(tok.tokenizer.encode(text, true));
}
