#pragma once
#include <memory>

#include "saelab/core/options.hpp"
#include "saelab/core/registry.hpp"
#include "source.hpp"

namespace saelab::llama {

OptionSchema source_schema();
std::unique_ptr<LlamaSource> make_source(const Options& opts, const PluginContext& ctx);

}  // namespace saelab::llama
