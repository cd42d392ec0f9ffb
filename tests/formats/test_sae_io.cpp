// SAELens saved-SAE directories: round trips, the Python oracle, and every validation error.
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace fs = std::filesystem;
namespace st = saelab::safetensors;
using nlohmann::json;

constexpr std::int64_t kDIn = 8, kDSae = 16;

SaeMeta meta() {
  SaeMeta m;
  m.model_name = "gpt2";
  m.hook_name = "blocks.8.hook_resid_pre";
  m.hook_layer = parse_hook_layer(m.hook_name);
  m.context_size = 128;
  m.prepend_bos = true;
  m.dtype = "float32";
  m.dataset_path = "data/corpus.jsonl";
  return m;
}

SaeDirectory make_sae(const std::string& arch, json extras = json::object()) {
  SaeDirectory sae;
  sae.cfg = make_sae_cfg(arch, kDIn, kDSae, meta(), extras);
  sae.weights = {{"W_enc", pattern(torch::kFloat32, {kDIn, kDSae})},
                 {"b_enc", pattern(torch::kFloat32, {kDSae})},
                 {"W_dec", pattern(torch::kFloat32, {kDSae, kDIn})},
                 {"b_dec", pattern(torch::kFloat32, {kDIn})}};
  if (arch == "jumprelu") sae.weights["threshold"] = pattern(torch::kFloat32, {kDSae});
  sae.log10_density = pattern(torch::kFloat32, {kDSae});
  return sae;
}

// Writes a directory without saelab's validation, to feed the loader bad contents.
fs::path write_raw(const TempDir& tmp, const json& cfg, const st::TensorMap& weights) {
  fs::path dir = tmp / "raw";
  fs::create_directories(dir);
  write_bytes(dir / "cfg.json", cfg.dump(2));
  st::save(dir / "sae_weights.safetensors", weights);
  return dir;
}

TEST(SaeIo, ParseHookLayer) {
  EXPECT_EQ(parse_hook_layer("blocks.8.hook_resid_pre"), 8);
  EXPECT_EQ(parse_hook_layer("blocks.11.attn.hook_z"), 11);
  expect_error<ConfigError>([] { parse_hook_layer("hook_embed"); },
                            {"\"hook_embed\"", "blocks.<layer>.<hook>", "blocks.8.hook_resid_pre"});
}

TEST(SaeIo, SaveLoadRoundTripAndMeta) {
  TempDir tmp;
  SaeDirectory sae = make_sae("jumprelu");
  save_sae_directory(tmp / "sae", sae);
  SaeDirectory back = load_sae_directory(tmp / "sae");
  EXPECT_EQ(back.cfg, sae.cfg);
  ASSERT_EQ(back.weights.size(), 5u);
  for (const auto& [name, t] : sae.weights) EXPECT_TRUE(bitwise_equal(back.weights.at(name), t)) << name;
  ASSERT_TRUE(back.log10_density.has_value());
  EXPECT_TRUE(bitwise_equal(*back.log10_density, *sae.log10_density));
  SaeMeta m = sae_meta_from_cfg(back.cfg, "cfg");
  EXPECT_EQ(m.hook_layer, 8);
  EXPECT_EQ(m.model_name, "gpt2");
  EXPECT_EQ(m.context_size, 128);
  EXPECT_TRUE(m.prepend_bos);
  EXPECT_EQ(m.dtype, "float32");
  // No temp or backup directories are left next to the SAE.
  for (const auto& e : fs::directory_iterator(tmp.path())) EXPECT_EQ(e.path().filename(), "sae");
}

TEST(SaeIo, SparsityIsOptional) {
  TempDir tmp;
  SaeDirectory sae = make_sae("standard");
  sae.log10_density.reset();
  save_sae_directory(tmp / "sae/", sae);  // a trailing slash names the same directory
  EXPECT_FALSE(fs::exists(tmp / "sae" / "sparsity.safetensors"));
  EXPECT_FALSE(load_sae_directory(tmp / "sae").log10_density.has_value());
}

TEST(SaeIo, RefusesToOverwriteUnlessAsked) {
  TempDir tmp;
  save_sae_directory(tmp / "sae", make_sae("standard"));
  expect_error<Error>([&] { save_sae_directory(tmp / "sae", make_sae("jumprelu")); },
                      {(tmp / "sae").string(), "already exists"});
  EXPECT_EQ(load_sae_directory(tmp / "sae").cfg["architecture"], "standard");
  save_sae_directory(tmp / "sae", make_sae("jumprelu"), /*overwrite=*/true);
  EXPECT_EQ(load_sae_directory(tmp / "sae").cfg["architecture"], "jumprelu");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(SaeIo, PythonSeesSaelensLayoutJumpRelu) {
  SAELAB_REQUIRE_ORACLE(py);
  TempDir tmp;
  save_sae_directory(tmp / "sae", make_sae("jumprelu"));
  auto r = run_oracle(py, "oracle_sae_dir.py", {(tmp / "sae").string(), "jumprelu", "8", "16"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(SaeIo, PythonSeesSaelensLayoutTopK) {
  SAELAB_REQUIRE_ORACLE(py);
  TempDir tmp;
  save_sae_directory(tmp / "sae", make_sae("topk", {{"k", 4}}));
  auto r = run_oracle(py, "oracle_sae_dir.py", {(tmp / "sae").string(), "topk", "8", "16", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

struct CfgCase {
  const char* label;
  std::function<void(json&)> mutate;
  std::vector<std::string> needles;
};

const CfgCase kBadCfgs[] = {
    CfgCase{"MissingDSae", [](json& c) { c.erase("d_sae"); }, {"missing key 'd_sae'"}},
    CfgCase{"DInIsString", [](json& c) { c["d_in"] = "768"; }, {"key 'd_in'", "string", "integer >= 1"}},
    CfgCase{"DSaeZero", [](json& c) { c["d_sae"] = 0; }, {"key 'd_sae'", "integer >= 1"}},
    CfgCase{"UnknownArchitecture",
            [](json& c) { c["architecture"] = "temporal"; },
            {"key 'architecture' is \"temporal\"",
             "allowed: standard, topk, batchtopk, jumprelu, gated, transcoder, skip_transcoder"}},
    CfgCase{"UnknownDtype",
            [](json& c) { c["dtype"] = "float8"; },
            {"key 'dtype'", "\"float8\"", "allowed: float32, float64, float16, bfloat16"}},
    CfgCase{"HookLayerMismatch",
            [](json& c) { c["hook_layer"] = 7; },
            {"'hook_layer' is 7", "names layer 8", "must agree"}},
    CfgCase{
        "PrependBosNotBool", [](json& c) { c["prepend_bos"] = 1; }, {"key 'prepend_bos'", "true or false"}},
    CfgCase{"NormalizeActivations",
            [](json& c) { c["normalize_activations"] = "expected_average_only_in"; },
            {"key 'normalize_activations'", "allowed: none"}},
    CfgCase{"ScalingFactor",
            [](json& c) { c["finetuning_scaling_factor"] = true; },
            {"'finetuning_scaling_factor' is true", "allowed: false"}},
    CfgCase{"HeadIndexString",
            [](json& c) { c["hook_head_index"] = "0"; },
            {"key 'hook_head_index'", "null or an integer"}},
    CfgCase{"KwargsNotObject",
            [](json& c) { c["activation_fn_kwargs"] = json::array(); },
            {"key 'activation_fn_kwargs'", "an object"}},
    CfgCase{"TopKWithoutK", [](json& c) { c["architecture"] = "topk"; }, {"\"topk\" needs k", "[1, d_sae]"}},
    CfgCase{"TopKTooLarge",
            [](json& c) {
              c["architecture"] = "topk";
              c["k"] = 17;
            },
            {"k is 17 but d_sae is 16"}},
    CfgCase{"TopKDisagree",
            [](json& c) {
              c["architecture"] = "topk";
              c["k"] = 4;
              c["activation_fn_kwargs"]["k"] = 5;
            },
            {"'k' is 4 but activation_fn_kwargs.k is 5", "must agree"}},
    CfgCase{"NotAnObject", [](json& c) { c = json::array({1}); }, {"it must be a JSON object"}}};

// All cases in one TEST: every TEST is a process that pays libtorch's start-up cost.
TEST(SaeIo, BadCfgNamesFileKeyAndAllowedValues) {
  for (const CfgCase& c : kBadCfgs) {
    SCOPED_TRACE(c.label);
    TempDir tmp;
    SaeDirectory sae = make_sae("standard");
    c.mutate(sae.cfg);
    fs::path dir = write_raw(tmp, sae.cfg, sae.weights);
    try {
      load_sae_directory(dir);
      ADD_FAILURE() << "no error";
    } catch (const FormatError& e) {
      std::string msg = e.what();
      std::cout << "  " << c.label << ": " << msg << "\n";
      EXPECT_NE(msg.find((dir / "cfg.json").string()), std::string::npos) << msg;
      for (const auto& n : c.needles) EXPECT_NE(msg.find(n), std::string::npos) << n << "\n" << msg;
    }
    // save validates with the same rules, so a bad SAE never reaches disk.
    EXPECT_THROW(save_sae_directory(tmp / "out", sae), FormatError);
    EXPECT_FALSE(fs::exists(tmp / "out"));
  }
}

TEST(SaeIo, BadWeightsNameFileTensorAndExpectation) {
  TempDir tmp;
  const std::string wfile = "sae_weights.safetensors";
  {
    SaeDirectory sae = make_sae("standard");
    sae.weights["W_enc"] = pattern(torch::kFloat32, {kDSae, kDIn});  // transposed
    fs::path dir = write_raw(tmp, sae.cfg, sae.weights);
    expect_error<FormatError>([&] { load_sae_directory(dir); }, {(dir / wfile).string(), "tensor 'W_enc'",
                                                                 "shape [16, 8]", "requires [8, 16]"});
    fs::remove_all(dir);
  }
  {
    SaeDirectory sae = make_sae("jumprelu");
    sae.weights.erase("threshold");
    fs::path dir = write_raw(tmp, sae.cfg, sae.weights);
    expect_error<FormatError>([&] { load_sae_directory(dir); }, {wfile, "tensor 'threshold'", "missing",
                                                                 "W_enc, b_enc, W_dec, b_dec, threshold"});
    fs::remove_all(dir);
  }
  {
    SaeDirectory sae = make_sae("standard");
    sae.weights["scaling_factor"] = torch::ones({kDSae});
    fs::path dir = write_raw(tmp, sae.cfg, sae.weights);
    expect_error<FormatError>(
        [&] { load_sae_directory(dir); },
        {wfile, "tensor 'scaling_factor'", "allowed tensors: W_enc, b_enc, W_dec, b_dec"});
    fs::remove_all(dir);
  }
  {
    SaeDirectory sae = make_sae("standard");
    sae.weights["b_dec"] = pattern(torch::kFloat16, {kDIn});
    fs::path dir = write_raw(tmp, sae.cfg, sae.weights);
    expect_error<FormatError>([&] { load_sae_directory(dir); },
                              {wfile, "tensor 'b_dec'", "dtype Half", "\"float32\""});
  }
}

TEST(SaeIo, BadDirectoryContents) {
  TempDir tmp;
  expect_error<FormatError>([&] { load_sae_directory(tmp / "missing"); },
                            {(tmp / "missing").string(), "does not exist"});
  SaeDirectory sae = make_sae("standard");
  fs::path dir = write_raw(tmp, sae.cfg, sae.weights);
  write_bytes(dir / "cfg.json", "{\"d_in\": 8,");
  expect_error<FormatError>([&] { load_sae_directory(dir); },
                            {(dir / "cfg.json").string(), "not valid JSON"});
  fs::remove(dir / "cfg.json");
  expect_error<FormatError>([&] { load_sae_directory(dir); }, {"missing cfg.json"});
  write_bytes(dir / "cfg.json", sae.cfg.dump());
  st::save(dir / "sparsity.safetensors", {{"sparsity", torch::zeros({kDSae + 1})}});
  expect_error<FormatError>([&] { load_sae_directory(dir); },
                            {"sparsity.safetensors", "tensor 'sparsity'", "[17]", "[d_sae] = [16]"});
  st::save(dir / "sparsity.safetensors", {{"density", torch::zeros({kDSae})}});
  expect_error<FormatError>([&] { load_sae_directory(dir); },
                            {"sparsity.safetensors", "tensor 'density'", "exactly one tensor, 'sparsity'"});
}

// Gated and transcoder directories: their own tensor sets, d_out, and the transcoder's rule that
// b_dec (in the output space) is never subtracted from the input.
TEST(SaeIo, GatedAndTranscoderTensorSets) {
  TempDir tmp;
  constexpr std::int64_t kDOut = 5;
  SaeDirectory gated;
  gated.cfg = make_sae_cfg("gated", kDIn, kDSae, meta());
  gated.weights = {
      {"W_enc", pattern(torch::kFloat32, {kDIn, kDSae})}, {"b_gate", pattern(torch::kFloat32, {kDSae})},
      {"b_mag", pattern(torch::kFloat32, {kDSae})},       {"r_mag", pattern(torch::kFloat32, {kDSae})},
      {"W_dec", pattern(torch::kFloat32, {kDSae, kDIn})}, {"b_dec", pattern(torch::kFloat32, {kDIn})}};
  save_sae_directory(tmp / "gated", gated);
  EXPECT_EQ(load_sae_directory(tmp / "gated").weights.size(), 6u);
  auto with_b_enc = gated.weights;
  with_b_enc["b_enc"] = pattern(torch::kFloat32, {kDSae});
  expect_error<FormatError>(
      [&] { load_sae_directory(write_raw(tmp, gated.cfg, with_b_enc)); },
      {"tensor 'b_enc': not part of a gated SAE", "W_enc, b_gate, b_mag, r_mag, W_dec, b_dec"});

  SaeMeta m = meta();
  m.apply_b_dec_to_input = false;
  m.hook_name_out = "blocks.8.hook_mlp_out";
  SaeDirectory tc;
  tc.cfg = make_sae_cfg("skip_transcoder", kDIn, kDSae, m, {{"d_out", kDOut}});
  tc.weights = {{"W_enc", pattern(torch::kFloat32, {kDIn, kDSae})},
                {"b_enc", pattern(torch::kFloat32, {kDSae})},
                {"W_dec", pattern(torch::kFloat32, {kDSae, kDOut})},
                {"b_dec", pattern(torch::kFloat32, {kDOut})},
                {"W_skip", pattern(torch::kFloat32, {kDOut, kDIn})}};
  save_sae_directory(tmp / "tc", tc);
  SaeDirectory back = load_sae_directory(tmp / "tc");
  EXPECT_EQ(sae_d_out(back.cfg), kDOut);
  EXPECT_EQ(sae_meta_from_cfg(back.cfg, "cfg").hook_name_out, "blocks.8.hook_mlp_out");
  EXPECT_TRUE(back.weights.at("W_skip").equal(tc.weights.at("W_skip")));

  json cfg = tc.cfg;
  cfg["apply_b_dec_to_input"] = true;
  expect_error<FormatError>(
      [&] { load_sae_directory(write_raw(tmp, cfg, tc.weights)); },
      {"cfg.json", "\"skip_transcoder\" has apply_b_dec_to_input true", "must be false"});
  cfg = tc.cfg;
  cfg.erase("d_out");
  expect_error<FormatError>([&] { load_sae_directory(write_raw(tmp, cfg, tc.weights)); },
                            {"missing key 'd_out'"});
  auto square = tc.weights;
  square["W_dec"] = pattern(torch::kFloat32, {kDSae, kDIn});
  expect_error<FormatError>(
      [&] { load_sae_directory(write_raw(tmp, tc.cfg, square)); },
      {"tensor 'W_dec': shape [16, 8]", "(d_in 8, d_sae 16, d_out 5) requires [16, 5]"});
  auto no_skip = tc.weights;
  no_skip.erase("W_skip");
  expect_error<FormatError>([&] { load_sae_directory(write_raw(tmp, tc.cfg, no_skip)); },
                            {"tensor 'W_skip': missing"});
}

}  // namespace
}  // namespace saelab::test
