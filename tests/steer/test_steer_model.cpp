// Steering on the real SmolLM2-135M with a small SAE trained on it (the steer_run fixture):
//   adding a latent's decoder direction raises the logits of its top logit-effect tokens;
//   clamping a latent to its current value, or ablating one that is 0, leaves the logits as they are;
//   a direction from a .npy or safetensors file is the same edit as the latent it holds;
//   steered generation with the key/value cache gives the tokens of steered generation without it.
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>

#include "saelab/formats/safetensors.hpp"
#include "saelab/sae/apply.hpp"
#include "saelab/steer/steering.hpp"
#include "steer_test_util.hpp"
#include "support/support.hpp"

namespace saelab {
namespace {

using test::steer_reference;
using test::steer_run;
using test::tokens_of;

const char* kText =
    "Fellow citizens of the Senate and House of Representatives: the state of the Union is strong, and the "
    "people of the United States have";

// Logits [T, vocab] with `edit` applied as it would be to a prompt of T tokens.
torch::Tensor logits_with(const HookEdit& edit, const torch::Tensor& tokens, const EditSpan& span) {
  auto& in = steer_run();
  return in.source
      ->run_with_replacement(
          tokens, edit.hook, [&](const torch::Tensor& a) { return edit.fn(a, span); }, true)
      .logits[0];
}

torch::Tensor clean_logits(const torch::Tensor& tokens) {
  auto& in = steer_run();
  return in.source
      ->run_with_replacement(
          tokens, in.hook, [](const torch::Tensor& a) { return a; }, true)
      .logits[0];
}

// Latent activations [T, d_sae] on the text.
torch::Tensor latents_on(const torch::Tensor& tokens) {
  auto& in = steer_run();
  torch::NoGradGuard g;
  const auto x = in.source->run_with_hooks(tokens, {in.hook}).at(in.hook)[0];
  return encode_sae(*in.sae.sae, x, 1.0);
}

TEST(SteerModel, AddingADecoderDirectionRaisesItsTopLogitTokens) {
  auto& in = steer_run();
  const auto& ref = steer_reference();
  const auto tokens = tokens_of(in.source->tokenize(kText));
  const auto T = tokens.size(1);
  const auto clean = clean_logits(tokens);
  // The 16 latents with the largest reference maxima, each added at 1x its max at every position.
  // Logits are compared centred (minus their mean over the vocabulary), as softmax sees them.
  const auto top_latents = std::get<1>(ref.max.topk(16));
  const auto w_dec = in.sae.sae->decoder_weight().detach();
  int raised = 0;
  double sum_rise = 0;
  for (std::int64_t i = 0; i < top_latents.size(0); ++i) {
    const auto f = top_latents[i].item<std::int64_t>();
    const auto effects = in.source->logit_effects(w_dec[f].unsqueeze(0), in.hook)[0];  // [vocab]
    const auto top_tokens = std::get<1>(effects.topk(10));
    const double alpha = ref.max_of(f);
    const auto edit = add_direction_edit(in.hook, w_dec[f], alpha, EditPositions::All);
    auto delta = (logits_with(edit, tokens, {0, T}) - clean).mean(0);  // [vocab], averaged over positions
    delta = delta - delta.mean();
    const double rise = delta.index_select(0, top_tokens).mean().item<double>();
    const double pct = (delta < rise).to(torch::kFloat64).mean().item<double>() * 100;
    std::printf(
        "  latent %5lld (max %5.2f): its top-10 logit-effect tokens rise %+.3f nats against the "
        "vocabulary (percentile %.1f)\n",
        static_cast<long long>(f), alpha, rise, pct);
    raised += rise > 0.25;
    sum_rise += rise;
  }
  std::printf("  %d of 16 latents raised their top logit-effect tokens by more than 0.25; mean rise %+.3f\n",
              raised, sum_rise / 16);
  // Layer 6 of 30: later layers act on the added direction too, so not every latent's direct
  // effect survives to the logits (the largest-norm latents are the likeliest to be rewritten).
  EXPECT_GE(raised, 10);
  EXPECT_GT(sum_rise / 16, 0.5);
}

TEST(SteerModel, ClampingALatentToItsCurrentValueLeavesTheLogits) {
  auto& in = steer_run();
  const auto tokens = tokens_of(in.source->tokenize(kText));
  const auto T = tokens.size(1);
  const auto f_last = latents_on(tokens)[T - 1];  // [d_sae]
  const auto f = f_last.argmax().item<std::int64_t>();
  const double value = f_last[f].item<double>();
  ASSERT_GT(value, 0.0);
  // Generated positions of a T-token prompt: only the last one, where latent f has `value`.
  const EditSpan span{0, T};
  const auto clean = clean_logits(tokens);
  const auto same = logits_with(set_latents_edit(in.hook, in.sae.sae, {{f, value}}, EditPositions::Generated),
                                tokens, span);
  const double d_same = test::max_abs_diff(same, clean);
  const auto other = logits_with(
      set_latents_edit(in.hook, in.sae.sae, {{f, 3 * value}}, EditPositions::Generated), tokens, span);
  const double d_other = test::max_abs_diff(other, clean);
  std::printf("  latent %lld at %.3f: clamped to itself max|dlogit| %.3e; clamped to 3x %.3e\n",
              static_cast<long long>(f), value, d_same, d_other);
  EXPECT_LE(d_same, 1e-3);
  EXPECT_GT(d_other, 0.1);  // the same edit with another value does change them
}

TEST(SteerModel, AblatingALatentThatNeverFiresChangesNothing) {
  auto& in = steer_run();
  const auto tokens = tokens_of(in.source->tokenize(kText));
  const auto lat = latents_on(tokens);        // [T, d_sae]
  const auto peak = std::get<0>(lat.max(0));  // [d_sae]
  const auto silent = peak.eq(0).nonzero().flatten();
  ASSERT_GT(silent.size(0), 0);
  const auto f_silent = silent[0].item<std::int64_t>(), f_loud = peak.argmax().item<std::int64_t>();
  const auto clean = clean_logits(tokens);
  const EditSpan span{0, tokens.size(1)};
  const double d_silent = test::max_abs_diff(
      logits_with(set_latents_edit(in.hook, in.sae.sae, {{f_silent, 0}}, EditPositions::All), tokens, span),
      clean);
  const double d_loud = test::max_abs_diff(
      logits_with(set_latents_edit(in.hook, in.sae.sae, {{f_loud, 0}}, EditPositions::All), tokens, span),
      clean);
  std::printf(
      "  ablating latent %lld (never fires here): max|dlogit| %.3e; ablating latent %lld (peak %.2f): %.3e\n",
      static_cast<long long>(f_silent), d_silent, static_cast<long long>(f_loud), peak[f_loud].item<double>(),
      d_loud);
  EXPECT_EQ(d_silent, 0.0);
  EXPECT_GT(d_loud, 0.05);
}

// A hand-written .npy v1.0 file: the format's magic, header dict and raw float32 data.
void write_npy(const std::filesystem::path& p, const torch::Tensor& v) {
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(v.size(0)) + ",), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY\x01";
  bytes += '\0';
  bytes += static_cast<char>(header.size() & 0xFF);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  const auto c = v.to(torch::kFloat32).contiguous();
  bytes.append(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel()) * 4);
  test::write_bytes(p, bytes);
}

TEST(SteerModel, ADirectionFromAFileIsTheSameEditAsItsLatent) {
  auto& in = steer_run();
  const auto tokens = tokens_of(in.source->tokenize(kText));
  const EditSpan span{0, tokens.size(1)};
  const auto f = std::get<1>(steer_reference().max.max(0)).item<std::int64_t>();
  const auto row = in.sae.sae->decoder_weight().detach()[f].clone();
  test::TempDir dir("steer-dir");
  write_npy(dir / "d.npy", row);
  safetensors::save(dir / "d.safetensors", {{"honesty", row}, {"other", row * 2}});
  const SteerTarget target{in.sae.sae, in.hook, row.size(0), nullptr};
  const auto by_latent = logits_with(
      steering_edits(target, {parse_feature_steer(std::to_string(f) + ":+20")}, {}, EditPositions::All)[0],
      tokens, span);
  for (const std::string file : {(dir / "d.npy").string(), (dir / "d.safetensors").string() + "#honesty"}) {
    const auto edits = steering_edits(target, {}, {parse_direction_steer(file + ":20")}, EditPositions::All);
    ASSERT_EQ(edits.size(), 1u);
    const double d = test::max_abs_diff(logits_with(edits[0], tokens, span), by_latent);
    std::printf("  %s vs latent %lld: max|dlogit| %.3e\n", file.c_str(), static_cast<long long>(f), d);
    EXPECT_LE(d, 1e-4);
  }
  EXPECT_TRUE(test::contains(
      test::error_of([&] {
        steering_edits(target, {}, {parse_direction_steer((dir / "d.safetensors").string() + ":1")},
                       EditPositions::All);
      }),
      "holds 2 tensors; name one as FILE#NAME"));
}

TEST(SteerModel, SteeredGenerationWithTheCacheEqualsWithout) {
  auto& in = steer_run();
  const auto& ref = steer_reference();
  const auto f = std::get<1>(ref.max.max(0)).item<std::int64_t>();
  const SteerTarget target{in.sae.sae, in.hook, in.sae.sae->shape().d_in, &ref};
  GenerateOptions o;
  o.max_new_tokens = 32;
  const auto prompt = in.source->tokenize("The state of the Union is");
  const auto plain = in.source->generate(prompt, o);
  for (const auto where : {EditPositions::All, EditPositions::Generated}) {
    o.edits = steering_edits(
        target, {parse_feature_steer(std::to_string(f) + ":+1.5x"), parse_feature_steer("3:clamp=2")}, {},
        where);
    o.use_cache = true;
    const auto cached = in.source->generate(prompt, o);
    o.use_cache = false;
    const auto uncached = in.source->generate(prompt, o);
    std::printf("  %s positions: \"%s\"\n   default: \"%s\"\n",
                where == EditPositions::All ? "all" : "generated", in.source->decode(cached).c_str(),
                in.source->decode(plain).c_str());
    EXPECT_EQ(cached, uncached);
    EXPECT_NE(cached, plain);
  }
}

}  // namespace
}  // namespace saelab
