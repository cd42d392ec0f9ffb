// The llama source against a forward pass written from the architecture's equations in numpy
// (numpy_llama.py: float64, Hugging Face's Q/K layout and half-split rotary, K and V repeated per
// query head), on other tokens than the transformers reference, for every hook kind.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "llama_test_util.hpp"
#include "saelab/formats/gguf.hpp"
#include "saelab/formats/safetensors.hpp"

namespace saelab::llama {
namespace {

std::string json_tokens(const at::Tensor& t) {
  std::string s = "[";
  for (std::int64_t b = 0; b < t.size(0); ++b) {
    s += b ? ",[" : "[";
    for (std::int64_t i = 0; i < t.size(1); ++i) s += cat(i ? "," : "", t[b][i].item<std::int64_t>());
    s += "]";
  }
  return s + "]";
}

TEST(LlamaNumpyReference, EveryHookKindAndTheLogits) {
  LlamaSource& src = test::smollm2();
  // Text the tokenizer turns into ids, plus ids drawn at random: different inputs from the
  // transformers reference windows.
  auto ids = src.tokenize("The sparse autoencoder found a feature for 1990s sports, or so 12 people said.");
  ids.resize(24, 17);
  at::manual_seed(7);
  const std::vector<std::int64_t> ids64(ids.begin(), ids.end());
  const auto tokens = at::stack({at::tensor(ids64), at::randint(src.info().vocab_size, {24}, at::kLong)});

  const auto dir = saelab::test::scratch_dir();
  const auto out = dir / "numpy.safetensors";
  const auto r = saelab::test::run_command(
      cat(saelab::test::shell_quote(saelab::test::oracle_python()), " ",
          saelab::test::shell_quote(std::string(SAELAB_SOURCE_DIR) + "/tests/llama/numpy_llama.py"), " ",
          saelab::test::shell_quote(test::model_path().string()), " ",
          saelab::test::shell_quote(out.string()), " --tokens '", json_tokens(tokens), "' --layers 0,14,29"));
  std::printf("%s", r.output.c_str());
  ASSERT_EQ(r.exit_code, 0);
  const auto ref = safetensors::load(out).tensors;

  std::vector<std::string> hooks;
  for (const auto& [name, t] : ref)
    if (name != "logits") hooks.push_back(name);
  const auto acts = src.run_with_hooks(tokens, hooks);
  for (const auto& h : hooks) {
    const auto d = test::compare(h, acts.at(h), ref.at(h));
    EXPECT_LE(d.rel(), 2e-5) << h;
  }
  const auto logits = src.run_with_replacement(
                             tokens, "blocks.14.hook_resid_post", [](const at::Tensor& x) { return x; }, true)
                          .logits;
  const auto d = test::compare("logits", logits, ref.at("logits"));
  EXPECT_LE(d.max_abs, 5e-4);  // float32 through 30 blocks against a float64 reference: 2.2e-4 measured
  EXPECT_TRUE(logits.argmax(-1).equal(ref.at("logits").argmax(-1)));
}

// Direct logit effects fold the final RMSNorm weight into W_U (tied to token_embd here):
// effect = directions @ (token_embd * output_norm)^T, from the file's tensors directly.
TEST(LlamaSource, LogitEffectsFoldTheFinalNormIntoTheTiedHead) {
  LlamaSource& src = test::smollm2();
  const gguf::File file(test::model_path());
  const auto w_u = gguf::load_f32(file, "token_embd.weight") * gguf::load_f32(file, "output_norm.weight");
  at::manual_seed(3);
  const auto dirs = at::randn({4, 576});
  const auto got = src.logit_effects(dirs, "blocks.15.hook_resid_post");
  const auto d = test::compare("logit effects", got, at::mm(dirs, w_u.t()));
  EXPECT_LE(d.rel(), 1e-5);
  EXPECT_FALSE(src.logit_effects(at::randn({2, 1536}), "blocks.3.mlp.hook_post").defined());
}

TEST(LlamaSource, InfoComesFromTheFile) {
  const SourceInfo& info = test::smollm2().info();
  EXPECT_EQ(info.vocab_size, 49152);
  EXPECT_EQ(info.max_context, 8192);
  EXPECT_EQ(info.bos_token, 1);
  EXPECT_EQ(info.eos_token, 2);
  EXPECT_EQ(info.hooks.at("blocks.29.hook_resid_post"), 576);
  EXPECT_EQ(info.hooks.at("blocks.0.mlp.hook_post"), 1536);
  EXPECT_EQ(info.hooks.at("ln_final.hook_normalized"), 576);
  EXPECT_EQ(info.hooks.size(), 30u * 7 + 1);
  const Config& c = test::smollm2().config();
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.rope_base, 100000.0);
  EXPECT_TRUE(c.tied_head);
}

TEST(LlamaSource, HookErrorsNameTheHookAndTheValidForms) {
  const auto msg = saelab::test::error_of([] {
    test::smollm2().run_with_hooks(at::ones({1, 4}, at::kLong), {"blocks.30.hook_resid_pre"});
  });
  EXPECT_TRUE(saelab::test::contains(msg, "names layer 30 but the model has 30 layers")) << msg;
  EXPECT_TRUE(saelab::test::contains(msg, "Llama hooks: blocks.{L}.hook_resid_pre")) << msg;
  const auto big = saelab::test::error_of([] {
    test::smollm2().run_with_hooks(at::full({1, 2}, 49152, at::kLong), {"blocks.0.hook_resid_pre"});
  });
  EXPECT_TRUE(saelab::test::contains(big, "llama: token ids must lie in [0, 49152)")) << big;
}

}  // namespace
}  // namespace saelab::llama
