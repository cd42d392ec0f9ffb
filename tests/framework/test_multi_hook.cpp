// Several hooks from one forward pass, end to end through the saelab executable on a random
// 2-layer GPT-2: the per-hook stores of one harvest equal one-hook harvests byte for byte; a
// transcoder trains on an MLP's input -> output pair, is saved as SAELens's transcoder and is
// evaluated spliced in place of the MLP; train.hooks trains one SAE per hook into saes/<hook>/
// (each evaluated and reported from its own hook's store); train.saes several from one read.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "saelab/core/fs_util.hpp"
#include "test_support.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

constexpr const char* kIn = "blocks.1.ln2.hook_normalized";
constexpr const char* kOut = "blocks.1.hook_mlp_out";

std::string config(const std::string& harvest, const std::string& train) {
  return "name: multi-hook\nseed: 1\nthreads: 1\n"
         "source: {plugin: gpt2, init: random, n_layer: 2, n_head: 4, n_embd: 64}\n"
         "corpus: {paths: [" +
         std::string(SAELAB_SOURCE_DIR) + "/data/corpus/sotu], context_size: 32}\n" + harvest +
         "train:\n  batch_size: 256\n  training_tokens: 40960\n  lr: 1e-3\n  lr_warmup_steps: 5\n"
         "  metrics_every_steps: 20\n  shuffle_buffer_rows: 8192\n" +
         train + "evaluate: {evaluator: {plugin: standard, batches: 2}}\n";
}

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(read_file(p, 1 << 26, "test json"));
}

test::CommandResult saelab(const std::string& args) {
  return test::run_command(test::exe() + " " + args);
}

// The store's shard checksums: equal lists mean byte-identical shard files.
std::vector<std::string> shard_hashes(const fs::path& store) {
  const nlohmann::json manifest = read_json(store / "manifest.json");
  std::vector<std::string> out;
  for (const auto& s : manifest["shards"]) out.push_back(s["sha256"]);
  return out;
}

TEST(MultiHook, OneHarvestOfTwoHooksEqualsTwoHarvestsOfOne) {
  const auto dir = test::scratch_dir();
  test::write_text(dir / "both.yaml",
                   config("harvest: {hooks: [" + std::string(kOut) + ", " + kIn + "], tokens: 5000}\n", ""));
  test::write_text(dir / "one.yaml",
                   config("harvest: {hook: " + std::string(kOut) + ", tokens: 5000}\n", ""));
  auto r = saelab("harvest " + (dir / "both.yaml").string() + " --out " + (dir / "both").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = saelab("harvest " + (dir / "one.yaml").string() + " --out " + (dir / "one").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto multi = shard_hashes(dir / "both" / "store" / kOut),
             single = shard_hashes(dir / "one" / "store");
  ASSERT_FALSE(single.empty());
  EXPECT_EQ(multi, single) << "the mlp_out store of the two-hook harvest differs from a one-hook harvest";
  const auto in_manifest = read_json(dir / "both" / "store" / kIn / "manifest.json");
  const auto out_manifest = read_json(dir / "both" / "store" / kOut / "manifest.json");
  EXPECT_EQ(in_manifest["rows"], out_manifest["rows"]);
  for (std::size_t i = 0; i < in_manifest["shards"].size(); ++i) {
    EXPECT_EQ(in_manifest["shards"][i]["end_sequence"], out_manifest["shards"][i]["end_sequence"]) << i;
    EXPECT_EQ(in_manifest["shards"][i]["rows"], out_manifest["shards"][i]["rows"]) << i;
  }
  auto info = saelab("store info " + (dir / "both" / "store" / kIn).string() + " --verify");
  EXPECT_EQ(info.exit_code, 0) << info.output;
  std::printf("two hooks, one pass: %s rows each; the mlp_out store equals a one-hook harvest (%zu shards)\n",
              out_manifest["rows"].dump().c_str(), single.size());
}

TEST(MultiHook, TranscoderTrainsOnAnMlpAndIsEvaluatedInItsPlace) {
  const auto dir = test::scratch_dir();
  test::write_text(dir / "tc.yaml",
                   config("harvest: {hooks: [" + std::string(kIn) + ", " + kOut + "], tokens: 8000}\n",
                          "  input_hook: " + std::string(kIn) + "\n  target_hook: " + kOut +
                              "\n  sae: {plugin: transcoder, d_sae: 256}\n"
                              "  losses: [{plugin: mse}, {plugin: l1, coefficient: 0.2}]\n"));
  auto r = saelab("run " + (dir / "tc.yaml").string() + " --out " + (dir / "run").string() +
                  " --set stages=[harvest,train,evaluate]");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cfg = read_json(dir / "run" / "sae" / "cfg.json");
  EXPECT_EQ(cfg["architecture"], "transcoder");
  EXPECT_EQ(cfg["hook_name"], kIn);
  EXPECT_EQ(cfg["hook_name_out"], kOut);
  EXPECT_EQ(cfg["d_in"], 64);
  EXPECT_EQ(cfg["d_out"], 64);
  const auto eval = read_json(dir / "run" / "eval.json");
  EXPECT_EQ(eval["target_hook"], kOut);
  const auto& d = eval["downstream"];
  std::printf(
      "transcoder of block 1's MLP (random GPT-2): explained variance of mlp_out %.4f, CE clean %.4f, "
      "spliced %.4f, MLP zero-ablated %.4f, CE loss score %s\n",
      eval["summary"]["explained_variance"].get<double>(), d["ce_loss_clean"].get<double>(),
      d["ce_loss_spliced"].get<double>(), d["ce_loss_ablated"].get<double>(),
      d["ce_loss_score"].dump().c_str());
  EXPECT_GT(eval["summary"]["explained_variance"].get<double>(), 0.3);
  EXPECT_NE(d["ce_loss_spliced"].get<double>(), d["ce_loss_clean"].get<double>())
      << "the transcoder replaced nothing";
}

TEST(MultiHook, TrainHooksTrainsOneSaePerHookAndEvaluatesAndReportsEach) {
  const auto dir = test::scratch_dir();
  test::write_text(dir / "per.yaml",
                   config("harvest: {hooks: [\"blocks.*.hook_resid_post\"], tokens: 5000}\n",
                          "  hooks: [\"blocks.*.hook_resid_post\"]\n"
                          "  sae: {plugin: topk, d_sae: 128, k: 8}\n"
                          "  losses: [{plugin: mse}]\n") +
                       "report: {reporter: {plugin: html, input: store}}\n");
  auto r = saelab("run " + (dir / "per.yaml").string() + " --out " + (dir / "run").string() +
                  " --set stages=[harvest,train,evaluate,report]");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* hook : {"blocks.0.hook_resid_post", "blocks.1.hook_resid_post"}) {
    const fs::path run = dir / "run" / "saes" / hook;
    EXPECT_EQ(read_json(run / "sae" / "cfg.json")["hook_name"], hook);
    EXPECT_TRUE(fs::exists(run / "metrics.jsonl")) << run;
    EXPECT_EQ(read_json(run / "eval.json")["hook"], hook);
    EXPECT_TRUE(fs::exists(run / "report" / "index.html")) << run;
  }
  EXPECT_FALSE(fs::exists(dir / "run" / "sae"));
}

// train.saes: several configurations on one hook from one read of the store.
TEST(MultiHook, TrainSaesTrainsSeveralConfigurationsFromOneRead) {
  const auto dir = test::scratch_dir();
  test::write_text(dir / "sweep.yaml",
                   config("harvest: {hook: blocks.1.hook_resid_post, tokens: 5000}\n",
                          "  saes: [{plugin: topk, d_sae: 128, k: 4}, {plugin: topk, d_sae: 128, "
                          "k: 8}]\n  losses: [{plugin: mse}]\n"));
  auto r = saelab("run " + (dir / "sweep.yaml").string() + " --out " + (dir / "run").string() +
                  " --set stages=[harvest,train,evaluate]");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(dir / "run" / "saes" / "0-topk" / "sae" / "cfg.json")["k"], 4);
  EXPECT_EQ(read_json(dir / "run" / "saes" / "1-topk" / "sae" / "cfg.json")["k"], 8);
  EXPECT_TRUE(fs::exists(dir / "run" / "saes" / "1-topk" / "eval.json"));
  const auto summary = read_json(dir / "run" / "run.json")["stages"]["train"]["summary"];
  std::printf("train.saes: 2 SAEs x 160 steps from %s batches read\n",
              summary["batches_read"].dump().c_str());
  EXPECT_EQ(summary["batches_read"], 160) << summary.dump();
}

TEST(MultiHook, MistakesAreNamedWithTheirOption) {
  const auto dir = test::scratch_dir();
  test::write_text(dir / "two.yaml",
                   config("harvest: {hooks: [" + std::string(kIn) + ", " + kOut + "], tokens: 3000}\n",
                          "  sae: {plugin: relu_l1, d_sae: 64}\n"));
  auto r = saelab("run " + (dir / "two.yaml").string() + " --out " + (dir / "run").string() +
                  " --set stages=[harvest,train]");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(test::contains(r.output, "holds 2 hooks")) << r.output;
  EXPECT_TRUE(test::contains(r.output, "train.input_hook")) << r.output;
  r = saelab("train " + (dir / "two.yaml").string() + " --out " + (dir / "run2").string() +
             " --set harvest.store_dir=" + (dir / "run" / "store").string() + " --set train.input_hook=" +
             kIn + " --set train.target_hook=blocks.0.hook_mlp_out --set train.sae.plugin=transcoder");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::contains(r.output, "has no hook 'blocks.0.hook_mlp_out'")) << r.output;
  test::write_text(dir / "bad.yaml",
                   config("harvest: {hooks: [\"blocks.*.hook_nothing\"], tokens: 3000}\n", ""));
  r = saelab("harvest " + (dir / "bad.yaml").string() + " --out " + (dir / "bad").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(test::contains(r.output, "harvest.hooks")) << r.output;
  EXPECT_TRUE(test::contains(r.output, "'blocks.*.hook_nothing' matches no hook")) << r.output;
  std::printf("  %s", r.output.c_str());
}

}  // namespace
}  // namespace saelab
