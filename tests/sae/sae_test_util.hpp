#pragma once
// Helpers of the SAE tests: plugins come from the build tree through the real plugin host, into a
// registry of the test's own.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "saelab/interfaces/loss.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/core/options.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/registry.hpp"
#include "support/support.hpp"

namespace saelab::test {

inline Registry& sae_registry() {
  static Registry* reg = [] {
    auto* r = new Registry();
    for (const char* lib : {"sae_relu_l1", "sae_topk", "sae_batchtopk", "sae_jumprelu", "sae_gated",
                            "sae_transcoder", "losses"})
      load_plugin_library(*r, std::string(SAELAB_PLUGIN_DIR) + "/libsaelab_plugin_" + lib + ".so");
    return r;
  }();
  return *reg;
}

using Values = std::map<std::string, OptionValue>;

// The plugin's defaults with `values` set as if written in a file.
inline Options plugin_options(const std::string& kind, const std::string& name, const Values& values) {
  const FactoryInfo* f = sae_registry().find(kind, name);
  if (!f) throw Error(cat("test: no ", kind, " plugin '", name, "' loaded"));
  Options o = default_options(f->schema, kind);
  for (const auto& [k, v] : values) o.set_given(k, v, SourceLoc{"test.yaml", 1, 1});
  return o;
}

inline std::shared_ptr<SaeArchitecture> make_sae(const std::string& name, Values values,
                                                 std::uint64_t seed = 1) {
  PluginContext ctx;
  ctx.seed = seed;
  return sae_registry().create<SaeArchitecture>(name, plugin_options("sae", name, values), ctx);
}

inline std::shared_ptr<Loss> make_loss(const std::string& name, Values values = {}) {
  return sae_registry().create<Loss>(name, plugin_options("loss", name, values), PluginContext{});
}

// Central differences of f w.r.t. every entry of t (perturbed in place and restored).
inline at::Tensor numeric_grad(const std::function<double()>& f, const at::Tensor& t, double h) {
  at::NoGradGuard ng;
  auto data = t.detach();
  auto g = at::zeros_like(data);
  auto* p = data.data_ptr<double>();
  auto* gp = g.data_ptr<double>();
  for (std::int64_t i = 0; i < data.numel(); ++i) {
    const double orig = p[i];
    p[i] = orig + h;
    const double fp = f();
    p[i] = orig - h;
    const double fm = f();
    p[i] = orig;
    gp[i] = (fp - fm) / (2 * h);
  }
  return g;
}

inline double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return max_abs_diff(a, b) / (1e-8 + b.abs().max().item<double>());
}

// fn must throw a saelab::Error whose message contains `part` (the message is printed otherwise).
template <class F>
void expect_error_contains(F&& fn, const std::string& part) {
  const std::string message = error_of(fn);
  EXPECT_TRUE(contains(message, part)) << "expected an error containing \"" << part << "\", got: " << message;
}

}  // namespace saelab::test
