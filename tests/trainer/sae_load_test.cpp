// saelab::load_sae: a SAELens directory saelab did not train becomes the plugin that declares its
// architecture, with cfg.json's options (k) and the saved weights; a directory whose architecture
// no loaded plugin handles is an error that names the file, the architecture and what is loaded.
#include <gtest/gtest.h>

#include "saelab/core/plugin_host.hpp"
#include "saelab/sae/load.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

// A TopK SAE written directly (not by saelab's trainer): d_in 8, d_sae 16, k 3.
fs::path write_topk_dir(const std::string& name) {
  const fs::path dir = test::scratch_dir(name) / "sae";
  torch::manual_seed(21);
  SaeMeta meta;
  meta.model_name = "gpt2";
  meta.hook_name = "blocks.3.hook_resid_pre";
  meta.hook_layer = 3;
  meta.context_size = 64;
  SaeDirectory d;
  d.cfg = make_sae_cfg("topk", 8, 16, meta, {{"k", 3}});
  d.weights = {{"W_enc", torch::randn({8, 16})},
               {"b_enc", torch::randn({16}) * 0.1},
               {"W_dec", torch::randn({16, 8})},
               {"b_dec", torch::randn({8}) * 0.1}};
  save_sae_directory(dir, d, /*overwrite=*/false);
  return dir;
}

TEST(SaeLoad, ForeignTopkDirectoryEncodesAsTheFormulaSays) {
  const fs::path dir = write_topk_dir("sae_load_topk");
  LoadedSae loaded = load_sae(test::plugins(), dir, PluginContext{});
  EXPECT_EQ(loaded.sae->architecture(), "topk");
  EXPECT_EQ(loaded.sae->shape().d_sae, 16);
  EXPECT_EQ(loaded.meta.hook_name, "blocks.3.hook_resid_pre");

  auto w = safetensors::load(dir / "sae_weights.safetensors").tensors;
  const torch::Tensor x = torch::randn({20, 8});
  const torch::Tensor pre = (x - w["b_dec"]).matmul(w["W_enc"]) + w["b_enc"];  // [20, 16]
  auto top = pre.topk(3, 1);
  const torch::Tensor want = torch::zeros_like(pre).scatter(1, std::get<1>(top), std::get<0>(top).relu());
  torch::NoGradGuard g;
  const torch::Tensor z = loaded.sae->encode(x);
  const double diff = (z - want).abs().max().item<double>();
  std::printf("loaded topk SAE encode vs formula: max |diff| = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_TRUE(z.ne(0).sum(1).le(3).all().item<bool>());
}

TEST(SaeLoad, ArchitectureWithoutAPluginNamesFileArchitectureAndLoadedPlugins) {
  const fs::path dir = write_topk_dir("sae_load_missing_plugin");
  Registry only_relu;
  load_plugin_library(only_relu, fs::path(SAELAB_PLUGIN_DIR) / "libsaelab_plugin_sae_relu_l1.so");
  try {
    load_sae(only_relu, dir, PluginContext{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("  error: %s\n", msg.c_str());
    for (const std::string& needle :
         {(dir / "cfg.json").string(), std::string("'topk'"), std::string("relu_l1")})
      EXPECT_NE(msg.find(needle), std::string::npos) << "message lacks \"" << needle << "\"";
  }
}

}  // namespace
}  // namespace saelab
