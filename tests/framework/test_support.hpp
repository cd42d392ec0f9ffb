#pragma once
// Helpers shared by the framework tests: temp dirs, running the CLI, a registry with test plugins.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>

#include "saelab/interfaces/loss.hpp"
#include "saelab/registry.hpp"

namespace saelab::test {

inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("saelab-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::filesystem::path write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing both streams.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
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
  r.add<Loss>("mse", "Test loss", mse, [](const Options&, const PluginContext&) { return std::make_unique<NullLoss>(); });
  OptionSchema l1;
  l1.real("coefficient", 5.0, "Weight of the term").above(0);
  l1.real("warmup_fraction", 0.0, "Warm-up").at_least(0).at_most(1);
  r.add<Loss>("l1", "Test loss", l1, [](const Options&, const PluginContext&) { return std::make_unique<NullLoss>(); });
  OptionSchema needs;
  needs.string("path", "", "A required path").require();
  r.add<Loss>("needs_path", "Test loss with a required option", needs,
              [](const Options&, const PluginContext&) { return std::make_unique<NullLoss>(); });
}

}  // namespace saelab::test
