// SAE directories (SAELens layout): cfg.json with sae_weights.safetensors and an optional
// sparsity.safetensors, read, validated, loaded into the SAE plugin that handles the architecture
// and run on a small batch.  Input: cfg.json PART sae_weights.safetensors [PART sparsity.safetensors]
#include <ATen/ATen.h>

#include "../fuzz_support.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/sae/load.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  saelab::fuzz::quiet_process();
  (void)saelab::plugin_registry();  // load the plugins once, not per input
  return 0;
}

SAELAB_FUZZ_TARGET("sae_dir") {
  const auto parts = saelab::fuzz::split_parts(data, size);
  const auto dir = saelab::fuzz::fresh_dir() / "sae";
  std::filesystem::create_directories(dir);
  saelab::fuzz::write_file(dir / "cfg.json", parts[0]);
  if (parts.size() > 1) saelab::fuzz::write_file(dir / "sae_weights.safetensors", parts[1]);
  if (parts.size() > 2) saelab::fuzz::write_file(dir / "sparsity.safetensors", parts[2]);
  (void)saelab::load_sae_directory(dir);
  const auto loaded = saelab::load_sae(saelab::plugin_registry(), dir, saelab::PluginContext{});
  const auto shape = loaded.sae->shape();
  loaded.sae->eval();
  const auto x = at::ones({2, shape.d_in});    // [2, d_in]
  const auto latents = loaded.sae->encode(x);  // [2, d_sae]
  (void)loaded.sae->decode(latents).sum();
}
