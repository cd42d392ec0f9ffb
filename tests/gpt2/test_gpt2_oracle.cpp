// GPT-2 against Hugging Face transformers: the same files loaded by both, every hook, the logits,
// the per-token loss, hook replacement and logit effects compared; each max |diff| is printed.
#include <cstdio>
#include <functional>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "random_init.hpp"
#include "saelab/core/error.hpp"
#include "saelab/formats/safetensors.hpp"
#include "source.hpp"
#include "test_util.hpp"

namespace saelab::gpt2 {
namespace {

namespace fs = std::filesystem;
using test::max_abs_diff;

constexpr double kTol = 1e-4;  // float32, max absolute difference

struct Sizes {
  int n_layer, n_head, n_embd, n_positions, vocab;
};

// Replacements both sides apply: "<hook>=zero" or "<hook>=scale:<s>".
HookFn replacement_fn(const std::string& spec) {
  const std::string op = spec.substr(spec.find('=') + 1);
  if (op == "zero") return [](const torch::Tensor& x) { return at::zeros_like(x); };
  const double s = std::stod(op.substr(op.find(':') + 1));
  return [s](const torch::Tensor& x) { return x * s; };
}

// What both implementations are run on, and what transformers produced for it.
struct Reference {
  at::Tensor tokens, directions;
  std::vector<std::string> specs;
  safetensors::TensorMap out;
};

Reference inputs(const fs::path& work, std::int64_t vocab, std::int64_t d, std::int64_t batch,
                 std::int64_t seq, std::vector<std::string> specs) {
  at::manual_seed(1234);
  Reference r{at::randint(vocab, {batch, seq}, at::kLong), at::randn({5, d}), std::move(specs), {}};
  safetensors::save(work / "inputs.safetensors", {{"tokens", r.tokens}, {"directions", r.directions}});
  return r;
}

std::string run_args(const fs::path& work, const Reference& r) {
  std::string a = cat(" --inputs '", (work / "inputs.safetensors").string(), "' --out '",
                      (work / "oracle.safetensors").string(), "'");
  for (const auto& s : r.specs) a += " --replace '" + s + "'";
  return a;
}

// transformers builds a random model into work/model and runs the inputs through it.
void oracle_make_run(const fs::path& work, const Sizes& s, const std::string& layout,
                     const std::string& dtype, int seed, Reference& r) {
  fs::create_directories(work / "model");
  test::run_command(cat(test::oracle_python(), " ", test::oracle_script(), " make --dir '",
                        (work / "model").string(), "' --n-layer ", s.n_layer, " --n-head ", s.n_head,
                        " --n-embd ", s.n_embd, " --n-positions ", s.n_positions, " --vocab ", s.vocab,
                        " --seed ", seed, " --layout ", layout, " --dtype ", dtype, run_args(work, r)),
                    work / "oracle.log");
  r.out = safetensors::load(work / "oracle.safetensors").tensors;
}

// transformers loads the model saelab wrote into work/model and runs the inputs through it.
void oracle_run(const fs::path& work, Reference& r) {
  test::run_command(cat(test::oracle_python(), " ", test::oracle_script(), " run --dir '",
                        (work / "model").string(), "'", run_args(work, r)),
                    work / "oracle.log");
  r.out = safetensors::load(work / "oracle.safetensors").tensors;
}

// Compares everything and prints one line per quantity.
void compare_with_oracle(Gpt2Source& src, const Reference& r, double tol = kTol) {
  const auto& ref = r.out;
  const auto& tokens = r.tokens;
  std::vector<std::string> hooks;
  for (const auto& [name, d] : src.info().hooks) hooks.push_back(name);
  const auto acts = src.run_with_hooks(tokens, hooks);  // every hook in one pass
  ASSERT_EQ(acts.size(), hooks.size());
  double worst = 0;
  for (const auto& name : hooks) {
    ASSERT_TRUE(ref.count(name)) << name;
    ASSERT_EQ(acts.at(name).sizes(), ref.at(name).sizes()) << name;
    const double d = max_abs_diff(acts.at(name), ref.at(name));
    worst = std::max(worst, d);
    std::printf("  %-32s max|diff| = %.3g\n", name.c_str(), d);
    EXPECT_LE(d, tol) << name;
  }
  std::printf("  %-32s max|diff| = %.3g\n", "(all hooks)", worst);

  auto identity = [](const torch::Tensor& x) { return x; };
  const auto clean = src.run_with_replacement(tokens, "blocks.0.hook_resid_pre", identity, true);
  const double dl = max_abs_diff(clean.logits, ref.at("logits"));
  const double dloss = max_abs_diff(clean.loss, ref.at("loss"));
  std::printf("  %-32s max|diff| = %.3g\n  %-32s max|diff| = %.3g\n", "logits", dl, "loss", dloss);
  EXPECT_LE(dl, tol);
  EXPECT_LE(dloss, tol);

  for (const auto& spec : r.specs) {
    const std::string hook = spec.substr(0, spec.find('='));
    const auto out = src.run_with_replacement(tokens, hook, replacement_fn(spec), true);
    const double a = max_abs_diff(out.logits, ref.at("replace:" + spec + ":logits"));
    const double b = max_abs_diff(out.loss, ref.at("replace:" + spec + ":loss"));
    std::printf("  replace %-40s logits %.3g  loss %.3g\n", spec.c_str(), a, b);
    EXPECT_LE(a, tol) << spec;
    EXPECT_LE(b, tol) << spec;
    // The replacement must change something, or the comparison would prove nothing.
    EXPECT_GT(max_abs_diff(out.loss, clean.loss), 1e-3) << spec;
  }

  const auto effects = src.logit_effects(r.directions, "blocks.1.hook_resid_post");
  const double de = max_abs_diff(effects, ref.at("logit_effects"));
  std::printf("  %-32s max|diff| = %.3g\n", "logit_effects", de);
  EXPECT_LE(de, tol);
}

std::unique_ptr<Gpt2Source> open(const fs::path& dir) {
  SourceOptions o;
  o.model_dir = dir;
  return std::make_unique<Gpt2Source>(o);
}

const std::vector<std::string> kSpecs = {
    "blocks.0.hook_resid_post=scale:0.5", "blocks.1.mlp.hook_post=zero",
    "blocks.0.hook_attn_out=zero",        "blocks.1.hook_mlp_out=scale:3",
    "blocks.1.hook_resid_pre=scale:2",    "ln_final.hook_normalized=scale:1.5"};

TEST(Gpt2Oracle, Small12LayerHubLayoutMatchesTransformers) {
  // GPT-2 small's shape (vocabulary, context and all), hub names with the attn.bias buffers;
  // a short sequence keeps the test quick.
  const auto work = test::scratch_dir();
  auto r = inputs(work, 50257, 768, 2, 12, kSpecs);
  oracle_make_run(work, {12, 12, 768, 1024, 50257}, "hub", "F32", 7, r);
  auto src = open(work / "model");
  EXPECT_EQ(src->info().hooks.size(), 12u * 7 + 1);
  EXPECT_EQ(src->info().hooks.at("blocks.3.mlp.hook_post"), 3072);
  compare_with_oracle(*src, r);
  src.reset();
  fs::remove_all(work);  // 0.5 GB
}

TEST(Gpt2Oracle, PrefixedUntiedHeadMatchesTransformers) {
  const auto work = test::scratch_dir();
  auto r = inputs(work, 500, 64, 3, 40, kSpecs);
  oracle_make_run(work, {2, 4, 64, 64, 500}, "prefixed-untied", "F32", 3, r);
  auto src = open(work / "model");
  // The head really is independent of wte here.
  EXPECT_FALSE(at::equal(src->model().unembedding(), src->model().wte->weight));
  compare_with_oracle(*src, r);
}

TEST(Gpt2Oracle, PrefixedTiedHeadMatchesTransformers) {
  const auto work = test::scratch_dir();
  auto r = inputs(work, 300, 32, 2, 48, kSpecs);  // the full context
  oracle_make_run(work, {3, 2, 32, 48, 300}, "prefixed", "F32", 4, r);
  auto src = open(work / "model");
  EXPECT_TRUE(src->model().unembedding().is_same(src->model().wte->weight));  // shared, not copied
  compare_with_oracle(*src, r);
}

TEST(Gpt2Oracle, F16AndBF16FilesMatchTransformers) {
  for (const std::string& dtype : std::vector<std::string>{"F16", "BF16"}) {
    std::printf("%s weights:\n", dtype.c_str());
    const auto work = test::scratch_dir(dtype);
    auto r = inputs(work, 500, 64, 2, 16, {kSpecs[0]});
    oracle_make_run(work, {2, 4, 64, 64, 500}, dtype == "F16" ? "hub" : "prefixed", dtype, 5, r);
    for (const auto& e : safetensors::load_header(work / "model" / "model.safetensors").entries)
      if (e.name.find("wte") != std::string::npos) {
        EXPECT_EQ(e.dtype, dtype);
      }
    auto src = open(work / "model");
    compare_with_oracle(*src, r);
  }
}

TEST(Gpt2Oracle, RandomWeightModeFilesLoadInTransformers) {
  // saelab writes the random model; transformers loads that directory: the files are real
  // GPT-2 files, and both implementations agree on them.
  const auto work = test::scratch_dir();
  RandomInit init;
  init.config.n_layer = 2;
  init.config.n_head = 4;
  init.config.n_embd = 64;
  init.config.n_positions = 32;
  init.config.vocab_size = 400;
  init.seed = 11;
  init.ln_noise = 0.2;
  init.bias_std = 0.05;
  write_random_model(work / "model", init);
  auto r = inputs(work, 400, 64, 2, 32, kSpecs);
  oracle_run(work, r);
  auto src = open(work / "model");
  compare_with_oracle(*src, r);
}

TEST(Gpt2Oracle, Bfloat16ComputeStaysCloseToTransformers) {
  const auto work = test::scratch_dir();
  auto r = inputs(work, 500, 64, 2, 16, {kSpecs[0]});
  oracle_make_run(work, {2, 4, 64, 64, 500}, "hub", "F32", 6, r);
  SourceOptions o;
  o.model_dir = work / "model";
  o.dtype = torch::kBFloat16;
  Gpt2Source src(o);
  // bfloat16 keeps 8 bits of mantissa: agreement to a few 1e-2 is what it can give.
  compare_with_oracle(src, r, 0.15);
}

}  // namespace
}  // namespace saelab::gpt2
