#include <iostream>

#include "cli_util.hpp"
#include "saelab/error.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/plugin_host.hpp"

namespace saelab::cli {

int cmd_store(const Args& args) {
  po::options_description desc("options");
  std::string action, dir, plugin = "hdf5";
  desc.add_options()
    ("action", po::value(&action)->required(), "info")
    ("dir", po::value(&dir)->required(), "store directory")
    ("verify", "verify every shard's checksums")
    ("plugin", po::value(&plugin), "store plugin that wrote it (default hdf5)");
  po::positional_options_description pos;
  pos.add("action", 1).add("dir", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, "store info DIR [--verify] [--plugin NAME]")) return 0;
  if (action != "info") throw UsageError(cat("unknown store action '", action, "'; allowed: info"));
  const Registry& reg = plugin_registry();
  const FactoryInfo& f = reg.require("store", plugin, SourceLoc{"--plugin"}, "plugin");
  auto store = reg.create<ActivationStore>(plugin, default_options(f.schema, "store"), PluginContext{});
  std::cout << store->info(dir, vm.count("verify") > 0).dump(2) << "\n";
  return 0;
}

int cmd_tokenize(const Args&) { throw Error("tokenize is not available in this build yet"); }
int cmd_fetch_model(const Args&) { throw Error("fetch-model is not available in this build yet"); }

}  // namespace saelab::cli
