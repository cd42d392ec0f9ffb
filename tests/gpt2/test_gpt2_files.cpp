// Malformed model directories: each is refused with a FormatError that names the file, the
// tensor or key, and what was expected.
#include <fstream>
#include <functional>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "random_init.hpp"
#include "saelab/core/error.hpp"
#include "saelab/formats/safetensors.hpp"
#include "test_util.hpp"
#include "weights.hpp"

namespace saelab::gpt2 {
namespace {

namespace fs = std::filesystem;

// 2 layers, d = 16, 4 heads, d_mlp = 64, 8 positions, 50 tokens.
fs::path tiny_model(const fs::path& dir) {
  RandomInit init;
  init.config.n_layer = 2;
  init.config.n_head = 4;
  init.config.n_embd = 16;
  init.config.n_positions = 8;
  init.config.vocab_size = 50;
  init.seed = 1;
  init.ln_noise = 0.1;
  init.bias_std = 0.1;
  write_random_model(dir, init);
  return dir;
}

void edit_tensors(const fs::path& dir, const std::function<void(safetensors::TensorMap&)>& edit) {
  auto file = safetensors::load(dir / "model.safetensors");
  edit(file.tensors);
  safetensors::save(dir / "model.safetensors", file.tensors);
}

void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(test::read_bytes(dir / "config.json"));
  edit(j);
  std::ofstream(dir / "config.json") << j.dump();
}

// Loads and expects a FormatError whose message contains every one of `parts`.
void expect_refused(const fs::path& dir, const std::vector<std::string>& parts) {
  try {
    load_model_dir(dir, torch::kFloat32, torch::kCPU);
    ADD_FAILURE() << "loaded " << dir << " without complaint";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    std::printf("  refused: %s\n", msg.c_str());
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
  }
}

TEST(Gpt2Files, MissingTensorIsNamedWithItsShape) {
  auto dir = tiny_model(test::scratch_dir());
  edit_tensors(dir, [](auto& t) { t.erase("h.1.mlp.c_fc.bias"); });
  expect_refused(dir, {"model.safetensors", "missing", "h.1.mlp.c_fc.bias [64]", "n_layer=2"});
}

TEST(Gpt2Files, WrongShapeNamesTensorAndBothShapes) {
  auto dir = tiny_model(test::scratch_dir());
  edit_tensors(dir, [](auto& t) { t["h.0.attn.c_attn.weight"] = at::zeros({16, 47}); });
  expect_refused(
      dir, {"model.safetensors", "'h.0.attn.c_attn.weight'", "[16, 47]", "expected [16, 48]", "n_embd=16"});
}

TEST(Gpt2Files, ConfigThatDisagreesWithWeightsIsAShapeError) {
  auto dir = tiny_model(test::scratch_dir());
  edit_config(dir, [](auto& j) { j["n_embd"] = 32; });
  expect_refused(dir, {"expected [50, 32]", "n_embd=32"});
}

TEST(Gpt2Files, UnknownTensorIsRefused) {
  auto dir = tiny_model(test::scratch_dir());
  edit_tensors(dir, [](auto& t) { t["h.0.attn.rotary"] = at::zeros({4}); });
  expect_refused(dir, {"model.safetensors", "unexpected tensor 'h.0.attn.rotary' [4]"});
}

TEST(Gpt2Files, TensorsOfALayerBeyondTheConfigAreRefused) {
  auto dir = tiny_model(test::scratch_dir());
  edit_tensors(dir, [](auto& t) {
    t["h.2.ln_1.weight"] = at::ones({16});
    t["h.2.attn.bias"] = at::ones({1, 1, 8, 8});
  });
  expect_refused(dir, {"unexpected tensor 'h.2.", "n_layer=2"});
}

TEST(Gpt2Files, SameTensorWithAndWithoutPrefixIsRefused) {
  auto dir = tiny_model(test::scratch_dir());
  edit_tensors(dir, [](auto& t) { t["transformer.wte.weight"] = t.at("wte.weight").clone(); });
  expect_refused(dir, {"'wte.weight' appears twice"});
}

TEST(Gpt2Files, IntegerAndNonFiniteTensorsAreRefused) {
  auto dir = tiny_model(test::scratch_dir());
  edit_tensors(dir, [](auto& t) { t["wpe.weight"] = at::zeros({8, 16}, at::kLong); });
  expect_refused(dir, {"'wpe.weight' has dtype I64", "F32, F16 or BF16"});
  dir = tiny_model(test::scratch_dir("nan"));
  edit_tensors(dir, [](auto& t) { t["ln_f.bias"][3] = std::numeric_limits<float>::quiet_NaN(); });
  expect_refused(dir, {"'ln_f.bias' contains NaN or Inf"});
}

TEST(Gpt2Files, UntiedConfigNeedsLmHead) {
  auto dir = tiny_model(test::scratch_dir());
  edit_config(dir, [](auto& j) { j["tie_word_embeddings"] = false; });
  expect_refused(dir, {"tie_word_embeddings = false", "lm_head.weight [50, 16]"});
}

TEST(Gpt2Files, PickleOnlyDirectoryIsRefusedWithWhatToFetch) {
  auto dir = tiny_model(test::scratch_dir());
  fs::remove(dir / "model.safetensors");
  std::ofstream(dir / "pytorch_model.bin") << std::string("\x80\x02}q\x00.", 6);  // never opened by saelab
  expect_refused(dir, {"pytorch_model.bin", "never loads pickled", "model.safetensors", "fetch-model"});
}

TEST(Gpt2Files, ShardedAndEmptyDirectoriesAreRefused) {
  auto dir = test::scratch_dir();
  std::ofstream(dir / "config.json") << "{}";
  expect_refused(dir, {"no model.safetensors", "config.json"});
  std::ofstream(dir / "model.safetensors.index.json") << "{}";
  expect_refused(dir, {"sharded", "model.safetensors.index.json"});
  expect_refused(dir / "nope", {"not a directory"});
}

TEST(Gpt2Files, MissingConfigIsRefused) {
  auto dir = tiny_model(test::scratch_dir());
  fs::remove(dir / "config.json");
  expect_refused(dir, {"no config.json"});
}

TEST(Gpt2Files, OlderConfigWithOnlyNCtxLoads) {
  auto dir = tiny_model(test::scratch_dir());
  edit_config(dir, [](auto& j) { j.erase("n_positions"); });
  const auto m = load_model_dir(dir, torch::kFloat32, torch::kCPU);
  EXPECT_EQ(m.config.n_positions, 8);
}

struct BadConfig {
  std::function<void(nlohmann::json&)> edit;
  std::vector<std::string> parts;
};

TEST(Gpt2Files, BadConfigValuesNameTheKeyAndWhatIsAllowed) {
  const std::vector<BadConfig> cases = {
      {[](auto& j) { j["n_embd"] = 18; }, {"n_embd = 18 is not divisible by n_head = 4"}},
      {[](auto& j) { j["n_layer"] = -1; }, {"'n_layer' = -1 is out of range", "allowed 1 .. 1024"}},
      {[](auto& j) { j["n_head"] = "four"; }, {"'n_head' must be an integer", "\"four\""}},
      {[](auto& j) { j["n_positions"] = 2.5; }, {"'n_positions' must be an integer"}},
      {[](auto& j) { j.erase("vocab_size"); }, {"required key 'vocab_size' is missing"}},
      {[](auto& j) {
         j.erase("n_positions");
         j.erase("n_ctx");
       },
       {"required key 'n_positions' is missing"}},
      {[](auto& j) { j["vocab_size"] = 1LL << 40; }, {"'vocab_size'", "out of range"}},
      {[](auto& j) { j["activation_function"] = "swish"; }, {"'swish' is not supported", "gelu_new"}},
      {[](auto& j) { j["model_type"] = "llama"; }, {"model_type is \"llama\"", "\"gpt2\""}},
      {[](auto& j) { j["layer_norm_epsilon"] = 0; }, {"'layer_norm_epsilon' = 0"}},
      {[](auto& j) { j["scale_attn_weights"] = "yes"; }, {"'scale_attn_weights' must be true or false"}},
      {[](auto& j) { j["bos_token_id"] = 50; }, {"'bos_token_id' = 50 is out of range", "0 .. 49"}},
      {[](auto& j) {
         j = nlohmann::json::array({1, 2});
       },
       {"expected a JSON object"}},
  };
  const auto base = test::scratch_dir();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto dir = tiny_model(base / std::to_string(i));
    edit_config(dir, cases[i].edit);
    auto parts = cases[i].parts;
    parts.push_back((dir / "config.json").string());
    expect_refused(dir, parts);
  }
  auto dir = tiny_model(base / "json");
  std::ofstream(dir / "config.json") << "{\"n_layer\": 2,";
  expect_refused(dir, {"config.json", "not valid JSON"});
}

}  // namespace
}  // namespace saelab::gpt2
