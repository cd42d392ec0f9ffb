#pragma once
// Helpers of the framework tests: writing a file in one call and a registry with test plugins
// (the rest is tests/support).
#include <filesystem>
#include <fstream>
#include <string>

#include "saelab/interfaces/loss.hpp"
#include "saelab/core/registry.hpp"
#include "support/support.hpp"

namespace saelab::test {

// The saelab executable under test, quoted for the shell.
inline std::string exe() {
  return std::string("\"") + SAELAB_EXE + "\"";
}

inline std::filesystem::path write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// A loss that only exists in tests, so config tests do not depend on any real plugin.
class NullLoss : public Loss {
 public:
  std::string name() const override { return "null"; }
  torch::Tensor compute(const LossContext&) override { return torch::zeros({}); }
};

inline void register_test_plugins(Registry& reg) {
  Registrar r(reg, LibraryInfo{"test", "1.0", "<test>", nullptr});
  OptionSchema mse;
  mse.real("coefficient", 1.0, "Weight of the term").at_least(0);
  r.add<Loss>("mse", "Test loss", mse,
              [](const Options&, const PluginContext&) { return std::make_unique<NullLoss>(); });
  OptionSchema l1;
  l1.real("coefficient", 5.0, "Weight of the term").above(0);
  l1.real("warmup_fraction", 0.0, "Warm-up").at_least(0).at_most(1);
  r.add<Loss>("l1", "Test loss", l1,
              [](const Options&, const PluginContext&) { return std::make_unique<NullLoss>(); });
  OptionSchema needs;
  needs.string("path", "", "A required path").require();
  r.add<Loss>("needs_path", "Test loss with a required option", needs,
              [](const Options&, const PluginContext&) { return std::make_unique<NullLoss>(); });
}

}  // namespace saelab::test
