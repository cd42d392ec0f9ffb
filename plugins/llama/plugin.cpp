// Registers the llama activation source with the host's registry.
#include "factory.hpp"
#include "saelab/core/plugin_api.hpp"
#include "saelab/interfaces/activation_source.hpp"

namespace {

void register_llama(saelab::Registrar& r) {
  r.add<saelab::ActivationSource>(
      "llama", "Llama-architecture models (SmolLM2, Llama 2, TinyLlama, ...) from GGUF files",
      saelab::llama::source_schema(), [](const saelab::Options& o, const saelab::PluginContext& c) {
        return saelab::llama::make_source(o, c);
      });
}

}  // namespace

SAELAB_PLUGIN("llama", "0.1.0", "Llama-architecture GGUF activation source", register_llama)
