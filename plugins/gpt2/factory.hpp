#pragma once
// The gpt2 source's options and factory (registered by plugin.cpp; tests call them directly).
#include <memory>

#include "saelab/core/options.hpp"
#include "saelab/core/registry.hpp"
#include "source.hpp"

namespace saelab::gpt2 {

OptionSchema source_schema();
std::unique_ptr<Gpt2Source> make_source(const Options& options, const PluginContext& ctx);

}  // namespace saelab::gpt2
