// The gpt2 source's behaviour checked against hand computations from the weight file: hook
// relations, early stop, input validation, loss, logit effects, random initialisation.
#include <cmath>
#include <fstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "random_init.hpp"
#include "saelab/core/error.hpp"
#include "saelab/formats/safetensors.hpp"
#include "source.hpp"
#include "test_util.hpp"

namespace saelab::gpt2 {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::error_of;

RandomInit tiny_init() {
  RandomInit init;
  init.config.n_layer = 3;
  init.config.n_head = 2;
  init.config.n_embd = 16;
  init.config.n_positions = 12;
  init.config.vocab_size = 40;
  init.seed = 5;
  init.ln_noise = 0.2;
  init.bias_std = 0.1;
  return init;
}

struct Fixture {
  fs::path dir;
  std::unique_ptr<Gpt2Source> src;
  safetensors::TensorMap file;
  at::Tensor tokens;
};

Fixture make_fixture() {
  Fixture f;
  f.dir = test::scratch_dir() / "model";
  write_random_model(f.dir, tiny_init());
  SourceOptions o;
  o.model_dir = f.dir;
  o.tokenizer_dir = "";
  f.src = std::make_unique<Gpt2Source>(o);
  f.file = safetensors::load(f.dir / "model.safetensors").tensors;
  at::manual_seed(3);
  f.tokens = at::randint(40, {2, 12}, at::kLong);
  return f;
}

TEST(Gpt2Source, FirstResidPreIsTokenPlusPositionEmbedding) {
  auto f = make_fixture();
  const auto act = f.src->run_with_hooks(f.tokens, {"blocks.0.hook_resid_pre"}).at("blocks.0.hook_resid_pre");
  const auto expect = f.file.at("wte.weight").index({f.tokens}) + f.file.at("wpe.weight").slice(0, 0, 12);
  EXPECT_LE(test::max_abs_diff(act, expect), 1e-7);
}

TEST(Gpt2Source, HookRelationsHoldExactly) {
  auto f = make_fixture();
  std::vector<std::string> names;
  for (const auto& [n, d] : f.src->info().hooks) names.push_back(n);
  const auto a = f.src->run_with_hooks(f.tokens, names);
  for (int l = 0; l < 3; ++l) {
    const auto p = cat("blocks.", l, ".");
    EXPECT_TRUE(
        at::equal(a.at(p + "hook_resid_mid"), a.at(p + "hook_resid_pre") + a.at(p + "hook_attn_out")));
    EXPECT_TRUE(
        at::equal(a.at(p + "hook_resid_post"), a.at(p + "hook_resid_mid") + a.at(p + "hook_mlp_out")));
    // mlp_out = mlp.hook_post @ c_proj.W + b, straight from the file.
    const auto mlp =
        at::addmm(f.file.at(cat("h.", l, ".mlp.c_proj.bias")), a.at(p + "mlp.hook_post").reshape({-1, 64}),
                  f.file.at(cat("h.", l, ".mlp.c_proj.weight")));
    EXPECT_LE(test::max_abs_diff(mlp.view({2, 12, 16}), a.at(p + "hook_mlp_out")), 1e-6);
    if (l > 0) {
      EXPECT_TRUE(at::equal(a.at(p + "hook_resid_pre"), a.at(cat("blocks.", l - 1, ".hook_resid_post"))));
    }
  }
  const auto lnf = at::layer_norm(a.at("blocks.2.hook_resid_post"), {16}, f.file.at("ln_f.weight"),
                                  f.file.at("ln_f.bias"), 1e-5);
  EXPECT_LE(test::max_abs_diff(lnf, a.at("ln_final.hook_normalized")), 1e-6);
}

TEST(Gpt2Source, SeveralHooksInOnePassEqualSeparateRuns) {
  auto f = make_fixture();
  const std::vector<std::string> hooks = {"blocks.2.hook_resid_mid", "blocks.0.mlp.hook_post",
                                          "ln_final.hook_normalized", "blocks.1.hook_attn_out"};
  const auto together = f.src->run_with_hooks(f.tokens, hooks);
  ASSERT_EQ(together.size(), hooks.size());
  for (const auto& h : hooks)
    EXPECT_TRUE(at::equal(together.at(h), f.src->run_with_hooks(f.tokens, {h}).at(h))) << h;
  EXPECT_EQ(together.at("blocks.0.mlp.hook_post").sizes(), (at::IntArrayRef{2, 12, 64}));
}

TEST(Gpt2Source, ForwardStopsAfterTheLastBlockAHookNeeds) {
  auto f = make_fixture();
  // Sabotage block 1: running it now throws, so any success below proves it was not run.
  auto& w = f.src->model().h[1]->as<BlockImpl>()->attn->c_attn->weight;
  w.set_data(at::zeros({3, 3}));
  EXPECT_NO_THROW(f.src->run_with_hooks(f.tokens, {"blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"}));
  EXPECT_NO_THROW(f.src->run_with_hooks(f.tokens, {"blocks.1.hook_resid_pre"}));
  EXPECT_ANY_THROW(f.src->run_with_hooks(f.tokens, {"blocks.1.hook_attn_out"}));
  EXPECT_ANY_THROW(f.src->run_with_hooks(f.tokens, {"blocks.2.hook_resid_pre"}));
  EXPECT_ANY_THROW(f.src->run_with_hooks(f.tokens, {"blocks.0.hook_resid_pre", "ln_final.hook_normalized"}));
}

TEST(Gpt2Source, LossIsNextTokenCrossEntropy) {
  auto f = make_fixture();
  auto id = [](const torch::Tensor& x) { return x; };
  const auto out = f.src->run_with_replacement(f.tokens, "blocks.1.hook_resid_mid", id, true);
  ASSERT_EQ(out.logits.sizes(), (at::IntArrayRef{2, 12, 40}));
  ASSERT_EQ(out.loss.sizes(), (at::IntArrayRef{2, 11}));
  // Independent formula: ATen's cross_entropy on the shifted logits.
  const auto ce = at::cross_entropy_loss(out.logits.slice(1, 0, 11).reshape({-1, 40}),
                                         f.tokens.slice(1, 1).reshape({-1}), {}, at::Reduction::None)
                      .view({2, 11});
  EXPECT_LE(test::max_abs_diff(out.loss, ce), 1e-5);
  const auto no_logits = f.src->run_with_replacement(f.tokens, "blocks.1.hook_resid_mid", id, false);
  EXPECT_FALSE(no_logits.logits.defined());
  EXPECT_TRUE(at::equal(no_logits.loss, out.loss));
  // Logits equal ln_final @ W_U^T with W_U = wte from the file (tied).
  const auto lnf =
      f.src->run_with_hooks(f.tokens, {"ln_final.hook_normalized"}).at("ln_final.hook_normalized");
  EXPECT_LE(test::max_abs_diff(out.logits, at::matmul(lnf, f.file.at("wte.weight").t())), 1e-5);
}

TEST(Gpt2Source, ReplacementMustKeepTheShape) {
  auto f = make_fixture();
  const auto msg = error_of([&] {
    f.src->run_with_replacement(
        f.tokens, "blocks.0.mlp.hook_post", [](const torch::Tensor& x) { return x.slice(2, 0, 10); }, false);
  });
  EXPECT_TRUE(contains(msg, "blocks.0.mlp.hook_post")) << msg;
  EXPECT_TRUE(contains(msg, "[2, 12, 10]") && contains(msg, "[2, 12, 64]")) << msg;
}

TEST(Gpt2Source, BadTokensAndHookNamesAreExplained) {
  auto f = make_fixture();
  auto msg = error_of([&] { f.src->run_with_hooks(f.tokens + 30, {"blocks.0.hook_resid_pre"}); });
  EXPECT_TRUE(contains(msg, "[0, 40)")) << msg;
  msg = error_of([&] { f.src->run_with_hooks(at::zeros({1, 13}, at::kLong), {"blocks.0.hook_resid_pre"}); });
  EXPECT_TRUE(contains(msg, "13 tokens") && contains(msg, "n_positions")) << msg;
  msg = error_of([&] { f.src->run_with_hooks(at::zeros({1, 4}), {"blocks.0.hook_resid_pre"}); });
  EXPECT_TRUE(contains(msg, "integers")) << msg;
  msg = error_of([&] { f.src->run_with_hooks(at::zeros({4}, at::kLong), {"blocks.0.hook_resid_pre"}); });
  EXPECT_TRUE(contains(msg, "[batch, seq]")) << msg;
  msg = error_of([&] { f.src->run_with_hooks(f.tokens, {"blocks.3.hook_resid_pre"}); });
  EXPECT_TRUE(contains(msg, "layer 3") && contains(msg, "3 layers") && contains(msg, "0 <= L < 3")) << msg;
  msg = error_of([&] { f.src->run_with_hooks(f.tokens, {"blocks.0.hook_z"}); });
  EXPECT_TRUE(contains(msg, "'blocks.0.hook_z' is not a GPT-2 hook") &&
              contains(msg, "ln_final.hook_normalized"))
      << msg;
  msg = error_of([&] { f.src->run_with_hooks(f.tokens, {"blocks.01.hook_resid_pre"}); });
  EXPECT_TRUE(contains(msg, "leading 0")) << msg;
}

TEST(Gpt2Source, LogitEffectsAreDirectionsTimesUnembedding) {
  auto f = make_fixture();
  const auto dirs = at::randn({4, 16});
  const auto e = f.src->logit_effects(dirs, "blocks.2.hook_resid_post");
  EXPECT_LE(test::max_abs_diff(e, at::mm(dirs, f.file.at("wte.weight").t())), 1e-6);
  EXPECT_FALSE(f.src->logit_effects(at::randn({4, 64}), "blocks.0.mlp.hook_post").defined());
  const auto msg = error_of([&] { f.src->logit_effects(at::randn({4, 15}), "blocks.0.hook_mlp_out"); });
  EXPECT_TRUE(contains(msg, "[n, 16]")) << msg;
}

TEST(Gpt2Source, ReturnedActivationsCanEnterAutograd) {
  auto f = make_fixture();
  const auto act =
      f.src->run_with_hooks(f.tokens, {"blocks.1.hook_resid_post"}).at("blocks.1.hook_resid_post");
  auto w = at::randn({16, 8}).requires_grad_(true);
  auto loss = at::matmul(act, w).pow(2).sum();
  loss.backward();
  EXPECT_TRUE(w.grad().defined());
}

TEST(Gpt2Source, InfoDescribesTheModel) {
  auto f = make_fixture();
  const auto& info = f.src->info();
  EXPECT_EQ(info.vocab_size, 40);
  EXPECT_EQ(info.max_context, 12);
  EXPECT_EQ(info.bos_token, 39);  // no tokenizer fits 40 tokens: the config's bos (vocab - 1)
  EXPECT_EQ(info.hooks.size(), 3u * 7 + 1);
  EXPECT_EQ(info.config_hash.size(), 64u);
  // Tokenizing needs a tokenizer; the error says why there is none.
  const auto msg = error_of([&] { f.src->tokenize("hello"); });
  EXPECT_TRUE(contains(msg, "cannot tokenize")) << msg;
}

TEST(Gpt2RandomInit, FollowsGpt2InitialisationAndIsReproducible) {
  const auto base = test::scratch_dir();
  RandomInit init;
  init.config.n_layer = 4;
  init.config.n_head = 4;
  init.config.n_embd = 128;
  init.config.n_positions = 64;
  init.config.vocab_size = 1000;
  init.seed = 9;
  write_random_model(base / "a", init);
  const auto a = safetensors::load(base / "a" / "model.safetensors").tensors;
  EXPECT_NEAR(a.at("wte.weight").std().item<double>(), 0.02, 0.0005);
  EXPECT_NEAR(a.at("h.1.attn.c_attn.weight").std().item<double>(), 0.02, 0.0005);
  const double resid = 0.02 / std::sqrt(8.0);
  EXPECT_NEAR(a.at("h.2.mlp.c_proj.weight").std().item<double>(), resid, 0.0003);
  EXPECT_TRUE(at::equal(a.at("h.3.ln_2.weight"), at::ones({128})));
  EXPECT_TRUE(at::equal(a.at("h.0.mlp.c_fc.bias"), at::zeros({512})));
  // Same seed: identical files; another seed: other weights; a second write is skipped.
  write_random_model(base / "b", init);
  EXPECT_EQ(test::read_bytes(base / "a" / "model.safetensors"),
            test::read_bytes(base / "b" / "model.safetensors"));
  const auto stamp = fs::last_write_time(base / "a" / "model.safetensors");
  write_random_model(base / "a", init);
  EXPECT_EQ(stamp, fs::last_write_time(base / "a" / "model.safetensors"));
  init.seed = 10;
  write_random_model(base / "c", init);
  EXPECT_FALSE(at::equal(a.at("wte.weight"),
                         safetensors::load(base / "c" / "model.safetensors").tensors.at("wte.weight")));
}

// A minimal valid byte-level BPE vocabulary: the 256 single bytes (in GPT-2's byte-to-unicode
// alphabet) with ids 0..255, then <|endoftext|> = 256, and no merges.
void write_byte_tokenizer(const fs::path& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = printable ? b : next++;
    std::string utf8;
    if (cp < 0x80) {
      utf8 += static_cast<char>(cp);
    } else {
      utf8 += static_cast<char>(0xC0 | (cp >> 6));
      utf8 += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[utf8] = b;
  }
  vocab["<|endoftext|>"] = 256;
  std::ofstream(dir / "vocab.json") << vocab.dump();
  std::ofstream(dir / "merges.txt") << "#version: 0.2\n";
}

TEST(Gpt2Tokenizer, ModelDirectoryTokenizerTakesPrecedence) {
  RandomInit init = tiny_init();
  init.config.vocab_size = 300;
  const auto dir = test::scratch_dir() / "model";
  write_random_model(dir, init);
  write_byte_tokenizer(dir);
  SourceOptions o;
  o.model_dir = dir;
  Gpt2Source src(o);
  EXPECT_EQ(src.tokenize("ab"), (std::vector<std::int32_t>{'a', 'b'}));
  EXPECT_EQ(src.decode({'h', 'i'}), "hi");
  EXPECT_EQ(src.info().bos_token, 256);  // the tokenizer's <|endoftext|>, not the config's 299
  EXPECT_EQ(src.info().tokenizer_sha256.size(), 64u);
}

TEST(Gpt2Tokenizer, Gpt2VocabularyUsesTheGpt2Tokenizer) {
  // data/gpt2-tokenizer (scripts/fetch-data.sh) through the `tokenizer` option.
  const fs::path tok = fs::path(SAELAB_SOURCE_DIR) / "data" / "gpt2-tokenizer";
  ASSERT_TRUE(fs::exists(tok / "encoder.json")) << "run scripts/fetch-data.sh";
  RandomInit init = tiny_init();
  init.config.vocab_size = 50257;
  const auto dir = test::scratch_dir() / "model";
  write_random_model(dir, init);
  SourceOptions o;
  o.model_dir = dir;
  o.tokenizer_dir = tok;
  Gpt2Source src(o);
  // Known ids (design notes): "Hello world" -> [15496, 995]; " the" -> 262.
  EXPECT_EQ(src.tokenize("Hello world"), (std::vector<std::int32_t>{15496, 995}));
  EXPECT_EQ(src.tokenize(" the"), (std::vector<std::int32_t>{262}));
  EXPECT_EQ(src.decode({15496, 995}), "Hello world");
  EXPECT_EQ(src.info().bos_token, 50256);
  EXPECT_EQ(src.info().eos_token, 50256);
  // A tokenizer directory without the files is a configuration error naming it.
  o.tokenizer_dir = dir / "nope";
  const auto msg = error_of([&] { Gpt2Source bad(o); });
  EXPECT_TRUE(contains(msg, "nope") && contains(msg, "vocab.json + merges.txt")) << msg;
}

}  // namespace
}  // namespace saelab::gpt2
