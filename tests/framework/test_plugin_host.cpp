// The plugin host: manifest checks before any C++ type is trusted, exceptions from plugin code,
// and library lifetime bound to the objects a library created.
#include <fstream>

#include <gtest/gtest.h>

#include "saelab/interfaces/callback.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/version.hpp"
#include "test_support.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;

const fs::path kExample = fs::path(SAELAB_EXAMPLE_PLUGIN_DIR) / "libsaelab_plugin_example.so";
const fs::path kFixture = fs::path(SAELAB_FIXTURE_PLUGIN_DIR) / "libsaelab_plugin_fixture.so";
const fs::path kBadAbi = fs::path(SAELAB_BADABI_PLUGIN_DIR) / "libsaelab_plugin_badabi.so";

bool mapped(const fs::path& lib) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const std::string name = fs::canonical(lib).string();
  while (std::getline(maps, line)) {
    if (line.find(name) != std::string::npos) return true;
  }
  return false;
}

TEST(PluginHost, LoadsALibraryAndListsWhatItRegistered) {
  Registry reg;
  LoadedLibrary lib = load_plugin_library(reg, kExample);
  EXPECT_EQ(lib.plugin, "example");
  EXPECT_EQ(lib.version, "1.0.0");
  const FactoryInfo* f = reg.find("callback", "early_stop");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->library.file, kExample);
  EXPECT_NE(f->schema.find("patience"), nullptr);
}

TEST(PluginHost, RefusesAWrongAbiNamingFileAndBothVersions) {
  Registry reg;
  try {
    load_plugin_library(reg, kBadAbi);
    FAIL() << "a plugin built for ABI 999 was accepted";
  } catch (const PluginError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(kBadAbi.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("plugin ABI version 999"), std::string::npos) << msg;
    EXPECT_NE(msg.find("has ABI version " + std::to_string(kPluginAbiVersion)), std::string::npos) << msg;
    EXPECT_NE(msg.find("rebuild the plugin"), std::string::npos) << msg;
  }
  EXPECT_TRUE(reg.names("loss").empty()) << "nothing from a refused library may be registered";
}

TEST(PluginHost, RefusesAFileThatIsNotAPlugin) {
  auto dir = test::scratch_dir("notplugin");
  auto fake = test::write_text(dir / "libsaelab_plugin_fake.so", "this is not an ELF file");
  Registry reg;
  EXPECT_THROW(load_plugin_library(reg, fake), PluginError);
  PluginScan scan = load_plugins(reg, {dir});
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_NE(scan.refused[0].find(fake.string()), std::string::npos) << scan.refused[0];
}

TEST(PluginHost, ExceptionInPluginFactoryBecomesAClearError) {
  Registry reg;
  load_plugin_library(reg, kFixture);
  Options opts = default_options(reg.find("loss", "fixture_throwing_loss")->schema, "train.losses[0]");
  try {
    reg.create<Loss>("fixture_throwing_loss", opts, PluginContext{});
    FAIL() << "the factory was expected to throw";
  } catch (const PluginError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("loss plugin 'fixture_throwing_loss'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(kFixture.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("fixture factory failed on purpose"), std::string::npos) << msg;
  }
}

TEST(PluginHost, ConfigErrorsFromFactoriesKeepTheirLocation) {
  Registry reg;
  load_plugin_library(reg, kExample);
  Options opts = default_options(reg.find("callback", "early_stop")->schema, "train.callbacks[0]");
  try {
    reg.create<TrainerCallback>("early_stop", opts, PluginContext{});
    FAIL() << "early_stop without a threshold must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.callbacks[0].below: set `below` or `above`"),
              std::string::npos)
        << e.what();
  }
}

TEST(PluginHost, ObjectsKeepTheirLibraryLoadedAfterTheRegistryIsGone) {
  std::shared_ptr<TrainerCallback> cb;
  {
    Registry reg;
    load_plugin_library(reg, kExample);
    Options opts = default_options(reg.find("callback", "early_stop")->schema, "cb");
    Options::Entry below;
    below.value = 0.5;
    below.from_default = false;
    opts.set("below", below);
    cb = reg.create<TrainerCallback>("early_stop", opts, PluginContext{});
  }
  ASSERT_TRUE(mapped(kExample)) << "the library was unloaded while its object lives";
  StepMetrics m;
  m.values["mse"] = 0.4;
  EXPECT_TRUE(cb->should_stop(m));  // runs code that lives in the plugin library
  m.values["mse"] = 0.6;
  EXPECT_FALSE(cb->should_stop(m));
}

TEST(PluginHost, DuplicateRegistrationsNameBothFiles) {
  Registry reg;
  load_plugin_library(reg, kExample);
  try {
    load_plugin_library(reg, kExample);
    FAIL() << "registering early_stop twice must fail";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("two plugins register the callback 'early_stop'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace saelab
