// Registers the gpt2 activation source with the host's registry.
#include "factory.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/core/plugin_api.hpp"

namespace {

void register_gpt2(saelab::Registrar& r) {
  r.add<saelab::ActivationSource>(
      "gpt2", "GPT-2 (small .. XL, or random weights) from Hugging Face safetensors files",
      saelab::gpt2::source_schema(), [](const saelab::Options& o, const saelab::PluginContext& c) {
        return saelab::gpt2::make_source(o, c);
      });
}

}  // namespace

SAELAB_PLUGIN("gpt2", "0.1.0", "GPT-2 activation source", register_gpt2)
