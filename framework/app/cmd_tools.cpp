#include <filesystem>
#include <iostream>

#include "cli_util.hpp"
#include "saelab/core/error.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/formats/hub.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/formats/gguf.hpp"
#include "saelab/text/gguf_tokenizer.hpp"

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

namespace {

namespace fs = std::filesystem;

// --tokenizer: "gpt2" (the bundled files in data/gpt2-tokenizer), a directory with vocab.json +
// merges.txt (or encoder.json + vocab.bpe), or a .gguf file whose vocabulary is used. Only the
// tokenizer is read: no weights are loaded.
text::BpeTokenizer load_tokenizer(const std::string& spec) {
  std::vector<fs::path> dirs;
  if (spec == "gpt2") {
    dirs = {fs::path("data") / "gpt2-tokenizer"};
#ifdef SAELAB_SOURCE_TREE_DIR
    dirs.push_back(fs::path(SAELAB_SOURCE_TREE_DIR) / "data" / "gpt2-tokenizer");
#endif
  } else if (fs::is_regular_file(spec)) {
    return text::load_gguf_tokenizer(gguf::File(spec)).tokenizer;
  } else {
    dirs = {spec};
  }
  std::string looked;
  for (const fs::path& d : dirs) {
    looked += (looked.empty() ? "" : ", ") + d.string();
    if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"))
      return text::BpeTokenizer::from_files(d / "vocab.json", d / "merges.txt");
    if (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe"))
      return text::BpeTokenizer::from_files(d / "encoder.json", d / "vocab.bpe");
  }
  throw UsageError(cat("--tokenizer ", spec,
                       ": no tokenizer files (vocab.json + merges.txt or encoder.json + ", "vocab.bpe) in ",
                       looked,
                       "; give a directory with them or a .gguf file, or run scripts/setup.sh for gpt2"));
}

std::vector<std::int32_t> parse_ids(const std::string& text, const std::string& file, std::int64_t vocab) {
  nlohmann::json ids;
  try {
    ids = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(cat("--decode: '", file, "' is not a JSON array of token ids: ", e.what()));
  }
  if (!ids.is_array()) throw UsageError(cat("--decode: '", file, "' must hold a JSON array of token ids"));
  std::vector<std::int32_t> v;
  for (const auto& id : ids) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= vocab)
      throw UsageError(
          cat("--decode: ", id.dump(), " is not a token id of this tokenizer (0..", vocab - 1, ")"));
    v.push_back(id.get<std::int32_t>());
  }
  return v;
}

}  // namespace

int cmd_tokenize(const Args& args) {
  po::options_description desc("options");
  std::string tokenizer = "gpt2", text_file;
  desc.add_options()("tokenizer", po::value(&tokenizer),
                     "gpt2 (bundled), a directory with vocab.json + merges.txt, or a .gguf file")(
      "text-file", po::value(&text_file)->required(),
      "file to tokenize (with --decode: a JSON array of ids)")(
      "decode", "decode a JSON array of token ids back to text")(
      "special", "match special tokens written in the text (<|endoftext|>, a GGUF's control tokens)");
  po::variables_map vm;
  if (!parse_args(args, desc, {}, vm, "tokenize [--tokenizer gpt2|DIR|FILE.gguf] --text-file F [--decode]"))
    return 0;
  const text::BpeTokenizer tok = load_tokenizer(tokenizer);
  const std::string text = read_file(text_file, std::uintmax_t(1) << 30, "text file");
  if (vm.count("decode"))
    std::cout << tok.decode(parse_ids(text, text_file, tok.vocab_size()));
  else
    std::cout << nlohmann::json(tok.encode(text, vm.count("special") > 0)).dump() << "\n";
  return 0;
}

int cmd_fetch_model(const Args& args) {
  po::options_description desc("options");
  std::string repo, revision = "main", cache;
  std::vector<std::string> files;
  desc.add_options()("repo", po::value(&repo)->required(),
                     "gpt2, gpt2-medium, ... or org/name on the Hugging Face hub")(
      "file", po::value(&files)->composing(),
      "fetch this file of the repository (repeatable; e.g. one quantization of a GGUF repository). "
      "Default: config.json and model.safetensors, or the repository's only .gguf file")(
      "revision", po::value(&revision), "branch, tag or commit (default main)")(
      "cache", po::value(&cache), "cache directory (default $SAELAB_CACHE or ~/.cache/saelab)");
  po::positional_options_description pos;
  pos.add("repo", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm, "fetch-model ID [--file NAME]... [--revision R] [--cache DIR]"))
    return 0;
  hub::FetchOptions fo;
  if (!files.empty()) {
    fo.files = files;
    fo.optional_files.clear();
  }
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
