#include "factory.hpp"

#include "saelab/core/error.hpp"

namespace saelab::llama {
namespace fs = std::filesystem;
namespace {

constexpr const char* kDefaultModel = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";

// A relative path is looked up under the working directory, then (in a build tree) under the
// source tree, so `./build/saelab run experiments/default.yaml` finds the model setup placed.
fs::path model_file(const Options& opts) {
  const fs::path given = opts.string("model");
  std::error_code ec;
  std::vector<fs::path> candidates = {given};
#ifdef SAELAB_LLAMA_SOURCE_DIR
  if (given.is_relative()) candidates.push_back(fs::path(SAELAB_LLAMA_SOURCE_DIR) / given);
#endif
  std::string looked;
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c, ec)) return c;
    looked += (looked.empty() ? "" : ", ") + c.string();
  }
  opts.fail("model", cat("no GGUF file at ", looked,
                         given == kDefaultModel ? "; run scripts/setup.sh, which fetches SmolLM2-135M" : ""));
}

}  // namespace

OptionSchema source_schema() {
  OptionSchema s;
  s.string("model", kDefaultModel,
           "a Llama-architecture GGUF file (SmolLM2-135M by default, placed by scripts/setup.sh)");
  s.choice("dtype", "float32", {"float32", "bfloat16"},
           "compute dtype; weights are dequantized into it once at load (activations are returned "
           "as float32)");
  return s;
}

std::unique_ptr<LlamaSource> make_source(const Options& opts, const PluginContext& ctx) {
  SourceOptions so;
  so.file = model_file(opts);
  so.model_id = opts.string("model");
  so.device = ctx.device;
  so.dtype = opts.string("dtype") == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  return std::make_unique<LlamaSource>(so);
}

}  // namespace saelab::llama
