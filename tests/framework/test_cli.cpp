// The saelab executable end to end: exit codes, messages, SAELAB_PLUGIN_PATH, run directories,
// and docs/config.md kept in sync with the schemas in the code.
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "saelab/core/fs_util.hpp"
#include "test_support.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;
using test::run_command;

using test::exe;
std::string with_path(const std::string& dir) {
  return "SAELAB_PLUGIN_PATH=\"" + dir + "\" ";
}

const char* kUsesExample =
    "name: uses-example\nstages: []\ntrain:\n  callbacks:\n    - plugin: early_stop\n      below: 0.05\n";

TEST(Cli, UnknownCommandIsAUsageError) {
  auto r = run_command(exe() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos) << r.output;
}

TEST(Cli, EveryVerbHasHelp) {
  for (const char* verb : {"run", "harvest", "train", "eval", "report", "validate", "plugins", "doctor",
                           "config-docs", "tokenize", "fetch-model", "sweep", "compare"}) {
    auto r = run_command(exe() + " " + verb + " --help");
    EXPECT_EQ(r.exit_code, 0) << verb << ": " << r.output;
    EXPECT_NE(r.output.find("usage: saelab"), std::string::npos) << verb << ": " << r.output;
  }
}

// `saelab tokenize` reads only a tokenizer: run from an empty directory, with no model weights
// anywhere, it tokenizes with GPT-2's bundled files and with a GGUF file's vocabulary. The ids are
// the published ones (GPT-2: "Hello world" = 15496 995; SmolLM2's model card example).
TEST(Cli, TokenizeNeedsOnlyTheTokenizer) {
  test::TempDir dir;
  test::write_text(dir / "text.txt", "Hello world, this is SmolLM2.");
  const std::string cd = "cd " + test::shell_quote(dir.path().string()) + " && ";
  auto r = run_command(cd + exe() + " tokenize --tokenizer gpt2 --text-file text.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[15496,995,11,"), std::string::npos) << r.output;
  const fs::path gguf = fs::path(SAELAB_SOURCE_DIR) / "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  ASSERT_TRUE(fs::exists(gguf)) << gguf << " is missing: run scripts/setup.sh";
  r = run_command(cd + exe() + " tokenize --tokenizer " + test::shell_quote(gguf.string()) +
                  " --text-file text.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[19556,905,28,451,314,3511,308,34519,34,30]"), std::string::npos) << r.output;
  r = run_command(cd + exe() + " tokenize --tokenizer no-such-dir --text-file text.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no-such-dir"), std::string::npos) << r.output;
  std::printf("  missing tokenizer: %s", r.output.c_str());
}

TEST(Cli, BadOptionIsAUsageError) {
  auto r = run_command(exe() + " validate --no-such-flag x.yaml");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, PluginFoundThroughPluginPathIsUsableFromYaml) {
  auto dir = test::scratch_dir("cli-example");
  auto file = test::write_text(dir / "exp.yaml", kUsesExample);
  auto r = run_command(with_path(SAELAB_EXAMPLE_PLUGIN_DIR) + exe() + " validate " + file.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto listed = run_command(with_path(SAELAB_EXAMPLE_PLUGIN_DIR) + exe() + " plugins");
  EXPECT_NE(listed.output.find("early_stop"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("libsaelab_plugin_example.so"), std::string::npos) << listed.output;
  // Without the path, the same file names an unknown plugin: exit code 2 with line and column.
  auto missing = run_command(exe() + " validate " + file.string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find(file.string() +
                                ":5:15: train.callbacks[0].plugin: unknown callback plugin 'early_stop'"),
            std::string::npos)
      << missing.output;
}

TEST(Cli, WrongAbiPluginIsRefusedWithBothVersions) {
  auto r = run_command(with_path(SAELAB_BADABI_PLUGIN_DIR) + exe() + " plugins");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("refused: plugin '" + std::string(SAELAB_BADABI_PLUGIN_DIR)), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("built for saelab plugin ABI version 999, but this saelab"), std::string::npos)
      << r.output;
  auto dir = test::scratch_dir("cli-badabi");
  auto file = test::write_text(dir / "exp.yaml",
                               "stages: []\ntrain:\n  callbacks: [{plugin: badabi_throwing_loss}]\n");
  auto v = run_command(with_path(SAELAB_BADABI_PLUGIN_DIR) + exe() + " validate " + file.string());
  EXPECT_EQ(v.exit_code, 2) << v.output;
  EXPECT_NE(v.output.find("note: a plugin library was refused"), std::string::npos) << v.output;
}

TEST(Cli, ConfigErrorsExitWithCodeTwoAndLocation) {
  auto dir = test::scratch_dir("cli-bad");
  auto file = test::write_text(dir / "bad.yaml", "stages: []\nharvest:\n  batch_sequences: 0\n");
  auto r = run_command(exe() + " validate " + file.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(
      r.output.find(file.string() + ":3:20: harvest.batch_sequences: value 0 is out of range; allowed: ≥ 1"),
      std::string::npos)
      << r.output;
  auto missing = run_command(exe() + " validate " + (dir / "nope.yaml").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("nope.yaml"), std::string::npos) << missing.output;
}

TEST(Cli, RunNeverOverwritesAnExistingRunUnlessAsked) {
  auto dir = test::scratch_dir("cli-rundir");
  auto file = test::write_text(dir / "exp.yaml", "name: empty\nstages: []\n");
  const std::string out = (dir / "run").string();
  auto first = run_command(exe() + " run " + file.string() + " --out " + out);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(fs::exists(dir / "run" / "config.resolved.yaml"));
  EXPECT_TRUE(fs::exists(dir / "run" / "saelab.log"));
  auto again = run_command(exe() + " run " + file.string() + " --out " + out);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("already exists; pass --resume"), std::string::npos) << again.output;
  EXPECT_EQ(run_command(exe() + " run " + file.string() + " --out " + out + " --resume").exit_code, 0);
  auto changed = run_command(exe() + " run " + file.string() + " --out " + out + " --resume --set seed=9");
  EXPECT_EQ(changed.exit_code, 2) << changed.output;
  EXPECT_NE(changed.output.find("the configuration differs"), std::string::npos) << changed.output;
  EXPECT_NE(changed.output.find("now: seed: 9"), std::string::npos) << changed.output;
  EXPECT_EQ(run_command(exe() + " run " + file.string() + " --out " + out + " --overwrite").exit_code, 0);
  // A directory saelab did not create is never touched, even with --overwrite.
  test::write_text(dir / "precious.txt", "keep me");
  auto foreign = run_command(exe() + " run " + file.string() + " --out " + dir.string() + " --overwrite");
  EXPECT_EQ(foreign.exit_code, 2) << foreign.output;
  EXPECT_TRUE(fs::exists(dir / "precious.txt"));
}

TEST(Cli, ConfigDocsAreInSyncWithTheCode) {
  auto r = run_command(exe() + " config-docs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string docs = read_file(fs::path(SAELAB_SOURCE_DIR) / "docs" / "config.md", 1 << 22, "docs");
  EXPECT_EQ(docs, r.output)
      << "docs/config.md is stale: regenerate it with\n  ./build/saelab config-docs --out docs/config.md";
}

}  // namespace
}  // namespace saelab

namespace saelab {
namespace {

// saelab heatmap and saelab features through a pipe: plain numbers, a standalone page, JSON.
void check_heatmap_pipe(const fs::path& run) {
  const std::string cd = "cd \"" + std::string(SAELAB_SOURCE_DIR) + "\" && ";
  const std::string target = test::shell_quote(run.string());
  auto r =
      run_command(cd + exe() + " heatmap " + target + " --text 'The President spoke to Congress.' --top 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pos\ttoken\tlatent_"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Congress\t"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("# most active latents"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\x1b["), std::string::npos) << "colour codes in a pipe:\n" << r.output;
  const fs::path page = run / "heatmap.html";
  r = run_command(cd + exe() + " heatmap " + target +
                  " --text '<script>alert(1)</script>' --features 0,5 --html " +
                  test::shell_quote(page.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string html = read_file(page, 1 << 20, "page");
  EXPECT_NE(html.find("style-src 'sha256-"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << html;
  EXPECT_NE(html.find("&lt;"), std::string::npos) << html;
  r = run_command(cd + exe() + " features " + target + " --text 'The President spoke' --json --per-token 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  ASSERT_EQ(j["tokens"].size(), 4u);  // BOS + three tokens
  EXPECT_EQ(j["tokens"][1]["text"], "The");
  EXPECT_LE(j["tokens"][1]["latents"].size(), 3u);
  r = run_command(cd + exe() + " heatmap " + target + " --text 'x' --features 0,99999");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("latent 99999 does not exist; this SAE has d_sae = 256"), std::string::npos)
      << r.output;
  r = run_command(cd + exe() + " heatmap /nonexistent --text 'x'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("neither a run directory"), std::string::npos) << r.output;
}

// The same in a real terminal (tmux): 256-colour backgrounds, the most active latents listed.
void check_heatmap_in_tmux(const fs::path& run) {
  ASSERT_EQ(run_command("command -v tmux").exit_code, 0)
      << "tmux is not installed: run scripts/setup.sh --oracle";
  const std::string session = "saelab-heatmap-" + std::to_string(::getpid());
  const std::string t = " -t " + session;
  ASSERT_EQ(run_command("tmux new-session -d -x 160 -y 50 -s " + session).exit_code, 0);
  const std::string cmd = "cd " + test::shell_quote(SAELAB_SOURCE_DIR) + " && " + exe() + " heatmap " +
                          test::shell_quote(run.string()) +
                          " --text 'The President spoke to Congress.' --top 2" + "; echo heatmap-exit-$?";
  run_command("tmux send-keys" + t + " " + test::shell_quote(cmd) + " Enter");
  std::string screen;
  auto finished = [&] {  // the typed line holds "heatmap-exit-$?", the output a digit there
    const auto at = screen.rfind("heatmap-exit-");
    return at != std::string::npos && at + 13 < screen.size() &&
           std::isdigit(static_cast<unsigned char>(screen[at + 13]));
  };
  for (int i = 0; i < 150 && !finished(); ++i) {
    ::usleep(200 * 1000);
    screen = run_command("tmux capture-pane -p -e -J" + t).output;  // -e keeps the colours
  }
  run_command("tmux kill-session" + t);
  EXPECT_NE(screen.find("heatmap-exit-0"), std::string::npos) << screen;
  EXPECT_NE(screen.find("48;5;"), std::string::npos) << "no 256-colour background:\n" << screen;
  EXPECT_NE(screen.find("most active latents"), std::string::npos) << screen;
  EXPECT_NE(screen.find("Congress"), std::string::npos) << screen;
}

// The whole pipeline through the real plugins on a 2-layer random GPT-2 and the bundled corpus:
// harvest -> train -> evaluate -> report, each leaving its documented output.
TEST(Cli, PipelineRunsEveryStageEndToEnd) {
  auto dir = test::scratch_dir("cli-pipeline");
  const std::string cfg = std::string(SAELAB_SOURCE_DIR) + "/tests/framework/pipeline_smoke.yaml";
  auto r = test::run_command("cd \"" + std::string(SAELAB_SOURCE_DIR) + "\" && " + exe() + " run " + cfg +
                             " --out " + (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* p : {"store/manifest.json", "metrics.jsonl", "sae/cfg.json", "sae/sae_weights.safetensors",
                        "sae/sparsity.safetensors", "eval.json", "report/index.html", "run.json"})
    EXPECT_TRUE(fs::exists(dir / "run" / p)) << p << "\n" << r.output;
  auto run = nlohmann::json::parse(read_file(dir / "run" / "run.json", 1 << 20, "run.json"));
  for (const char* st : {"harvest", "train", "evaluate", "report"})
    EXPECT_TRUE(run["stages"].contains(st)) << st;
  EXPECT_GE(run["stages"]["harvest"]["summary"]["rows"].get<std::int64_t>(), 20000);
  // The report holds every latent: 256 of them in chunks of 64.
  EXPECT_TRUE(fs::exists(dir / "run" / "report" / "data" / "features" / "0003.js"));
  EXPECT_TRUE(fs::exists(dir / "run" / "report" / "figures" / "density.svg"));
  check_heatmap_pipe(dir / "run");
  check_heatmap_in_tmux(dir / "run");
  // A finished run is continued stage by stage with --resume: nothing is redone.
  auto again = test::run_command("cd \"" + std::string(SAELAB_SOURCE_DIR) + "\" && " + exe() + " run " + cfg +
                                 " --out " + (dir / "run").string() + " --resume");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("stage train: already complete"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace saelab

namespace saelab {
namespace {

// experiments/synthetic.yaml end to end (shortened): a source whose hook is not TransformerLens-
// shaped trains (cfg.json's hook_layer comes from the source), and eval.json measures how much of
// the planted dictionary the SAE recovered.
TEST(Cli, SyntheticRunMeasuresGroundTruthRecovery) {
  auto dir = test::scratch_dir("cli-synthetic");
  const std::string src = SAELAB_SOURCE_DIR;
  auto r = test::run_command("cd \"" + src + "\" && " + exe() + " run experiments/synthetic.yaml --out " +
                             (dir / "run").string() +
                             " --set harvest.tokens=200000 --set train.training_tokens=512000 "
                             "--set evaluate.evaluator.batches=2 --set stages=[harvest,train,evaluate]");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto cfg = nlohmann::json::parse(read_file(dir / "run" / "sae" / "cfg.json", 1 << 20, "cfg"));
  EXPECT_EQ(cfg["hook_name"], "synthetic.hook");
  EXPECT_EQ(cfg["hook_layer"], 0);
  auto eval = nlohmann::json::parse(read_file(dir / "run" / "eval.json", 1 << 26, "eval"));
  ASSERT_TRUE(eval.contains("ground_truth")) << eval.dump(1).substr(0, 2000);
  const auto& g = eval["ground_truth"];
  std::printf("synthetic run (512k training tokens): MCC %.4f, fraction recovered %.4f, F1 %.3f\n",
              g["mcc"].get<double>(), g["fraction_recovered"].get<double>(), g["f1"].get<double>());
  EXPECT_EQ(g["planted_features"], 1024);
  EXPECT_GT(g["mcc"].get<double>(), 0.8);
  EXPECT_GT(g["f1"].get<double>(), 0.3);
  EXPECT_EQ(g["classification_rows"], eval["counts"]["tokens_evaluated"]);
  // The error-term run gives the clean cross-entropy back.
  EXPECT_LT(eval["downstream"]["error_term_max_abs_ce_diff"].get<double>(), 1e-4);
  // Evaluation starts after the harvested sequences, and says which it used.
  const auto& held = eval["held_out"];
  const auto harvested = held["harvested_sequences"].get<std::int64_t>();
  EXPECT_GT(harvested, 1000);
  EXPECT_EQ(held["first_sequence"], harvested);
  EXPECT_EQ(held["last_sequence"].get<std::int64_t>(),
            harvested + eval["counts"]["sequences"].get<std::int64_t>() - 1);
  EXPECT_FALSE(held["overlaps_training"].get<bool>());
  // An explicit skip_sequences takes effect, and one inside the harvested range is warned about.
  auto again =
      test::run_command("cd \"" + src + "\" && " + exe() + " eval experiments/synthetic.yaml --out " +
                        (dir / "run").string() + " --overwrite --force --set harvest.tokens=200000 " +
                        "--set train.training_tokens=512000 --set evaluate.evaluator.batches=2 " +
                        "--set stages=[harvest,train,evaluate] --set evaluate.skip_sequences=5");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(
      test::contains(again.output, "evaluate.skip_sequences is 5 but this run harvested sequences 0.."))
      << again.output;
  EXPECT_TRUE(test::contains(again.output, "the evaluation will see sequences the SAE was trained on"))
      << again.output;
  auto overlapping = nlohmann::json::parse(read_file(dir / "run" / "eval.json", 1 << 26, "eval"))["held_out"];
  EXPECT_EQ(overlapping["first_sequence"], 5);
  EXPECT_TRUE(overlapping["overlaps_training"].get<bool>());
}

}  // namespace
}  // namespace saelab
