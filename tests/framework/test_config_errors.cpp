// Every kind of bad experiment file gives a ConfigError with file:line:column, the key path and
// what is allowed. Expected line/column values are counted by hand from the YAML literals.
#include <gtest/gtest.h>

#include "saelab/config/config.hpp"
#include "test_support.hpp"

namespace saelab {
namespace {

OptionSchema test_schema() {
  OptionSchema s;
  s.string("name", "", "Run name");
  s.integer("threads", -1, "Threads").autoable().at_least(1);
  s.choice("device", "auto", {"auto", "cpu", "cuda"}, "Device");
  s.integer("harvest.tokens", 1000, "Rows").at_least(1);
  s.string("harvest.hook", "blocks.8.hook_resid_pre", "Hook");
  s.real("train.lr", 4e-4, "Learning rate").above(0);
  s.boolean("train.shuffle", true, "Shuffle");
  s.plugins("train.losses", "loss", {}, "Loss terms");
  return s;
}

class ConfigErrors : public ::testing::Test {
 protected:
  void SetUp() override { test::register_test_plugins(reg_); }
  ExperimentConfig parse(const std::string& yaml, const std::vector<ConfigOverride>& o = {}) {
    return parse_experiment(yaml, "exp.yaml", test_schema(), reg_, o);
  }
  std::string error_of(const std::string& yaml, const std::vector<ConfigOverride>& o = {}) {
    try {
      parse(yaml, o);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a ConfigError for:\n" << yaml;
    return "";
  }
  Registry reg_;
};

TEST_F(ConfigErrors, ValidFileParsesWithDefaultsAndLocations) {
  auto cfg = parse(
      "name: demo\nharvest:\n  tokens: 3e6\ntrain:\n  losses:\n    - plugin: mse\n    - {plugin: l1, "
      "coefficient: 2.5}\n");
  EXPECT_EQ(cfg.options.string("name"), "demo");
  EXPECT_EQ(cfg.options.integer("harvest.tokens"), 3000000);
  EXPECT_EQ(cfg.options.string("harvest.hook"), "blocks.8.hook_resid_pre");
  EXPECT_TRUE(cfg.options.is_auto("threads"));
  ASSERT_EQ(cfg.options.plugins("train.losses").size(), 2u);
  const PluginRef& l1 = cfg.options.plugins("train.losses")[1];
  EXPECT_EQ(l1.plugin, "l1");
  EXPECT_DOUBLE_EQ(l1.options->real("coefficient"), 2.5);
  EXPECT_DOUBLE_EQ(l1.options->real("warmup_fraction"), 0.0);
  EXPECT_EQ(l1.options->where("coefficient").str(), "exp.yaml:7:33");
  EXPECT_EQ(cfg.options.where("harvest.tokens").str(), "exp.yaml:3:11");
  EXPECT_EQ(cfg.hash.size(), 64u);
}

TEST_F(ConfigErrors, UnknownKeyNamesLineColumnPathAndSuggestion) {
  std::string e = error_of("harvest:\n  tokns: 10\n");
  EXPECT_NE(e.find("exp.yaml:2:3: harvest.tokns: unknown key 'tokns'"), std::string::npos) << e;
  EXPECT_NE(e.find("allowed here: tokens, hook"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'tokens'"), std::string::npos) << e;
}

TEST_F(ConfigErrors, UnknownKeyInsidePluginOptions) {
  std::string e = error_of("train:\n  losses:\n    - plugin: l1\n      coeff: 3\n");
  EXPECT_NE(e.find("exp.yaml:4:7: train.losses[0].coeff: unknown key 'coeff'"), std::string::npos) << e;
  EXPECT_NE(e.find("allowed here: coefficient, warmup_fraction"), std::string::npos) << e;
}

TEST_F(ConfigErrors, WrongTypeSaysExpectedAndGot) {
  std::string e = error_of("harvest:\n  tokens: many\n");
  EXPECT_NE(e.find("exp.yaml:2:11: harvest.tokens: expected an integer, got 'many'"), std::string::npos) << e;
  e = error_of("train:\n  shuffle: [1, 2]\n");
  EXPECT_NE(e.find("exp.yaml:2:12: train.shuffle: expected true or false, got a list"), std::string::npos)
      << e;
  e = error_of("harvest: 5\n");
  EXPECT_NE(e.find("exp.yaml:1:10: harvest: expected a mapping with keys: tokens, hook; got a scalar"),
            std::string::npos)
      << e;
}

TEST_F(ConfigErrors, OutOfRangeGivesTheAllowedRange) {
  std::string e = error_of("harvest:\n  tokens: 0\n");
  EXPECT_NE(e.find("exp.yaml:2:11: harvest.tokens: value 0 is out of range; allowed: ≥ 1"), std::string::npos)
      << e;
  e = error_of("train:\n  losses: [{plugin: l1, warmup_fraction: 1.5}]\n");
  EXPECT_NE(e.find("train.losses[0].warmup_fraction: value 1.5 is out of range; allowed: ≥ 0, ≤ 1"),
            std::string::npos)
      << e;
  e = error_of("device: gpu\n");
  EXPECT_NE(e.find("exp.yaml:1:9: device: 'gpu' is not allowed; allowed: one of auto, cpu, cuda"),
            std::string::npos)
      << e;
}

TEST_F(ConfigErrors, MissingRequiredOption) {
  std::string e = error_of("train:\n  losses:\n    - plugin: needs_path\n");
  EXPECT_NE(e.find("exp.yaml:3:15: train.losses[0].path: is required (A required path)"), std::string::npos)
      << e;
}

TEST_F(ConfigErrors, UnknownPluginListsAvailableOnes) {
  std::string e = error_of("train:\n  losses:\n    - plugin: msee\n");
  EXPECT_NE(e.find("exp.yaml:3:15: train.losses[0].plugin: unknown loss plugin 'msee'; available: l1, mse, "
                   "needs_path"),
            std::string::npos)
      << e;
}

TEST_F(ConfigErrors, OversizedFileIsRefused) {
  std::string big = "name: x\n# " + std::string(kMaxConfigBytes, 'x') + "\n";
  std::string e = error_of(big);
  EXPECT_NE(e.find("experiment files are limited to 1048576 bytes"), std::string::npos) << e;
}

TEST_F(ConfigErrors, MultiDocumentFileIsRefused) {
  std::string e = error_of("name: a\n---\nname: b\n");
  EXPECT_NE(e.find(":2:1: a second YAML document starts here"), std::string::npos) << e;
  EXPECT_NE(e.find("holds exactly one"), std::string::npos) << e;
}

// yaml-cpp 0.7 never consumes a ',' where a block node should start, so YAML::LoadAll alone would
// collect empty documents until memory ran out (found by tests/fuzz, target experiment).
TEST_F(ConfigErrors, StrayCommaIsRefusedInsteadOfLoopingForever) {
  for (const char* text : {",\n", "- x\n,\n", "# comment\n, latent: 3\n"}) {
    std::string e = error_of(text);
    EXPECT_NE(e.find("a second YAML document starts here"), std::string::npos) << text << ": " << e;
    EXPECT_NE(e.find("stray ','"), std::string::npos) << text << ": " << e;
  }
}

TEST_F(ConfigErrors, DeeplyNestedInputIsRefusedCleanly) {
  std::string deep = "name: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  std::string e = error_of(deep);
  EXPECT_NE(e.find("exp.yaml:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("nested too deeply"), std::string::npos) << e;
}

TEST_F(ConfigErrors, SyntaxErrorHasLineAndColumn) {
  std::string e = error_of("name: demo\nharvest:\n  tokens: [1, 2\n");
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
}

TEST_F(ConfigErrors, DuplicateKeyIsAnError) {
  std::string e = error_of("harvest:\n  tokens: 5\n  tokens: 6\n");
  EXPECT_NE(e.find("exp.yaml:3:3: harvest.tokens: is given twice"), std::string::npos) << e;
}

TEST_F(ConfigErrors, OverridesApplyAndAreBlamedOnTheCommandLine) {
  auto cfg =
      parse("harvest:\n  tokens: 5\n", {parse_override("harvest.tokens=7"), parse_override("train.lr=1e-3")});
  EXPECT_EQ(cfg.options.integer("harvest.tokens"), 7);
  EXPECT_DOUBLE_EQ(cfg.options.real("train.lr"), 1e-3);
  std::string e = error_of("name: x\n", {parse_override("harvest.tokens=-3")});
  EXPECT_NE(e.find("--set harvest.tokens: harvest.tokens: value -3 is out of range"), std::string::npos) << e;
  EXPECT_THROW(parse_override("no-equals-sign"), UsageError);
}

// An option whose default is `auto` takes a value given in the file or on the command line, and
// the resolved YAML says that value, not "auto".
TEST_F(ConfigErrors, AValueReplacesAnAutoDefault) {
  auto cfg = parse("threads: 1\n");
  EXPECT_FALSE(cfg.options.is_auto("threads"));
  EXPECT_EQ(cfg.options.integer("threads"), 1);
  EXPECT_NE(cfg.resolved.find("threads: 1"), std::string::npos) << cfg.resolved;
  cfg = parse("name: x\n", {parse_override("threads=3")});
  EXPECT_FALSE(cfg.options.is_auto("threads"));
  EXPECT_EQ(cfg.options.integer("threads"), 3);
  cfg = parse("threads: 2\n", {parse_override("threads=auto")});
  EXPECT_TRUE(cfg.options.is_auto("threads"));
}

TEST_F(ConfigErrors, ResolvedYamlRoundTripsToTheSameOptions) {
  auto a = parse("name: demo\ntrain:\n  lr: 0.001\n  losses: [mse, {plugin: l1, coefficient: 3}]\n");
  auto b = parse(a.resolved);
  EXPECT_EQ(a.resolved, b.resolved);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_DOUBLE_EQ(b.options.real("train.lr"), 0.001);
  EXPECT_DOUBLE_EQ(b.options.plugins("train.losses")[1].options->real("coefficient"), 3.0);
}

}  // namespace
}  // namespace saelab
