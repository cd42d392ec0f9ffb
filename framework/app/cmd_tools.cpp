#include <iostream>

#include "cli_util.hpp"
#include "saelab/core/error.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/formats/hub.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/core/plugin_host.hpp"

namespace saelab::cli {

int cmd_store(const Args& args) {
  po::options_description desc("options");
  std::string action, dir, plugin = "hdf5";
  desc.add_options()("action", po::value(&action)->required(), "info")(
      "dir", po::value(&dir)->required(), "store directory")("verify", "verify every shard's checksums")(
      "plugin", po::value(&plugin), "store plugin that wrote it (default hdf5)");
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

int cmd_tokenize(const Args& args) {
  po::options_description desc("options");
  std::string model = "gpt2", text_file, source_plugin = "gpt2";
  desc.add_options()("model", po::value(&model), "model directory or hub id (its tokenizer is used)")(
      "text-file", po::value(&text_file)->required(),
      "file to tokenize (with --decode: a JSON array of ids)")(
      "decode", "decode a JSON array of token ids back to text")(
      "source", po::value(&source_plugin), "source plugin whose tokenizer to use (default gpt2)");
  po::variables_map vm;
  if (!parse_args(args, desc, {}, vm, "tokenize --model DIR --text-file F [--decode]")) return 0;
  const Registry& reg = plugin_registry();
  const FactoryInfo& f = reg.require("source", source_plugin, SourceLoc{"--source"}, "source");
  Options opts = default_options(f.schema, "source");
  if (opts.has("model")) opts.set_given("model", model, SourceLoc{"--model"});
  auto source = reg.create<ActivationSource>(source_plugin, opts, PluginContext{});
  std::string text = read_file(text_file, std::uintmax_t(1) << 30, "text file");
  if (vm.count("decode")) {
    nlohmann::json ids;
    try {
      ids = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(cat("--decode: '", text_file, "' is not a JSON array of token ids: ", e.what()));
    }
    if (!ids.is_array())
      throw UsageError(cat("--decode: '", text_file, "' must hold a JSON array of token ids"));
    std::vector<std::int32_t> v;
    for (const auto& id : ids) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
          id.get<std::int64_t>() >= source->info().vocab_size)
        throw UsageError(cat("--decode: ", id.dump(), " is not a token id of this model (0..",
                             source->info().vocab_size - 1, ")"));
      v.push_back(id.get<std::int32_t>());
    }
    std::cout << source->decode(v);
  } else {
    std::cout << nlohmann::json(source->tokenize(text)).dump() << "\n";
  }
  return 0;
}

int cmd_fetch_model(const Args& args) {
  po::options_description desc("options");
  std::string repo, revision = "main", cache;
  desc.add_options()("repo", po::value(&repo)->required(),
                     "gpt2, gpt2-medium, ... or org/name on the Hugging Face hub")(
      "revision", po::value(&revision), "branch, tag or commit (default main)")(
      "cache", po::value(&cache), "cache directory (default $SAELAB_CACHE or ~/.cache/saelab)");
  po::positional_options_description pos;
  pos.add("repo", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, "fetch-model ID [--revision R] [--cache DIR]")) return 0;
  hub::FetchOptions fo;
  fo.revision = revision;
  fo.cache = cache;
  fo.progress = [](const std::string& name, std::uint64_t done, std::uint64_t total) {
    std::cerr << "\r" << name << ": " << done / (1 << 20) << "/" << total / (1 << 20) << " MiB" << std::flush;
  };
  hub::FetchResult r = hub::fetch_model(repo, fo);
  std::cerr << "\n";
  for (const auto& f : r.files) std::cout << f.path.string() << "  sha256 " << f.sha256 << "\n";
  return 0;
}

}  // namespace saelab::cli
