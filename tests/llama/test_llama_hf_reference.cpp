// SmolLM2-135M (the real Q4_1 GGUF file) against what Hugging Face transformers computes on the
// same file (shared/oracle/smollm2, see its README): logits, per-position loss and hooks on four
// 128-token windows of the bundled corpus. Every max difference is printed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "llama_test_util.hpp"
#include "saelab/formats/safetensors.hpp"

namespace saelab::llama {
namespace {

TEST(LlamaHfReference, LogitsLossAndHooksMatchTransformers) {
  const auto ref =
      safetensors::load(test::shared_dir() / "oracle" / "smollm2" / "smollm2_hf_reference.safetensors")
          .tensors;
  LlamaSource& src = test::smollm2();
  const auto tokens = ref.at("tokens");  // [4, 128]

  const std::vector<std::string> hooks = {"blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre",
                                          "blocks.15.hook_resid_pre", "blocks.29.hook_resid_pre",
                                          "ln_final.hook_normalized"};
  const auto acts = src.run_with_hooks(tokens, hooks);
  for (const auto& h : hooks) {
    const auto d = test::compare(h, acts.at(h), ref.at(h));
    // Both sides are float32 through up to 30 blocks with other summation orders (which also
    // differ between AVX2 and AVX-512 machines): 5e-7 to 2.2e-6 of the hook's largest value measured.
    EXPECT_LE(d.rel(), 1e-5) << h;
  }

  const auto out = src.run_with_replacement(
      tokens, "ln_final.hook_normalized", [](const at::Tensor& x) { return x; }, /*want_logits=*/true);
  const auto loss_d = test::compare("loss [4, 127]", out.loss, ref.at("loss"));
  EXPECT_LE(loss_d.max_abs, 1e-4);
  std::printf("  mean loss: saelab %.4f, transformers %.4f\n", out.loss.mean().item<double>(),
              ref.at("loss").mean().item<double>());

  const auto top_idx = ref.at("logits_top20_indices");  // [4, 128, 20]
  const auto ours_at_top = out.logits.gather(-1, top_idx);
  const auto top_d =
      test::compare("logits at transformers' top 20", ours_at_top, ref.at("logits_top20_values"));
  EXPECT_LE(top_d.max_abs, 2e-4);
  const auto top1 = out.logits.argmax(-1);
  const auto same = top1.eq(top_idx.select(-1, 0)).sum().item<std::int64_t>();
  std::printf("  top-1 identical at %lld of %lld positions\n", static_cast<long long>(same),
              static_cast<long long>(top1.numel()));
  EXPECT_EQ(same, top1.numel());

  const auto at_pos = ref.at("logits_full_at");  // [8, 2] (sequence, position)
  const auto full = ref.at("logits_full");       // [8, 49152]
  for (std::int64_t i = 0; i < at_pos.size(0); ++i) {
    const auto s = at_pos[i][0].item<std::int64_t>(), p = at_pos[i][1].item<std::int64_t>();
    const auto d = test::compare(cat("all logits at (", s, ", ", p, ")"), out.logits[s][p], full[i]);
    EXPECT_LE(d.max_abs, 2e-4);
  }
}

}  // namespace
}  // namespace saelab::llama
