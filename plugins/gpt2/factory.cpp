#include "factory.hpp"

#include "random_init.hpp"
#include "saelab/core/error.hpp"
#include "saelab/formats/hub.hpp"

namespace saelab::gpt2 {
namespace fs = std::filesystem;
namespace {

fs::path pretrained_dir(const Options& opts) {
  const std::string& model = opts.string("model");
  std::error_code ec;
  if (fs::is_directory(model, ec)) return model;
  fs::path cached;
  try {
    cached = hub::model_dir(model);
  } catch (const ConfigError&) {
    opts.fail("model", cat("'", model, "' is neither a directory nor a Hugging Face model id"));
  }
  if (fs::exists(cached / "config.json", ec)) return cached;
  opts.fail("model", cat("'", model, "' is not a directory, and ", cached.string(),
                         " does not hold it yet: run `saelab fetch-model ", model,
                         "`, or set model: to a directory with config.json and model.safetensors"));
}

fs::path random_dir(const Options& opts, const PluginContext& ctx, const RandomInit& init) {
  if (!opts.string("random_dir").empty()) return opts.string("random_dir");
  const std::string name =
      cat("gpt2-random-L", init.config.n_layer, "-H", init.config.n_head, "-D", init.config.n_embd, "-P",
          init.config.n_positions, "-V", init.config.vocab_size, "-seed", init.seed);
  if (!ctx.run_dir.empty()) return ctx.run_dir / name;
  return fs::temp_directory_path() / ("saelab-" + name);
}

}  // namespace

OptionSchema source_schema() {
  OptionSchema s;
  s.string("model", "gpt2",
           "hub id (gpt2, gpt2-medium, org/name; fetched by `saelab fetch-model`) or a directory "
           "with config.json and model.safetensors");
  s.choice("init", "pretrained", {"pretrained", "random"},
           "pretrained: load `model`; random: write and load a GPT-2 with random weights");
  s.integer("n_layer", 12, "init: random - number of blocks").at_least(1).at_most(1024);
  s.integer("n_head", 12, "init: random - attention heads (must divide n_embd)").at_least(1).at_most(1024);
  s.integer("n_embd", 768, "init: random - residual stream width").at_least(1).at_most(65536);
  s.integer("n_positions", 1024, "init: random - longest context").at_least(1).at_most(1 << 20);
  s.integer("vocab_size", 50257, "init: random - vocabulary size").at_least(1).at_most(1 << 24);
  s.integer("seed", -1, "init: random - weight seed (auto: the run's seed)").at_least(0).autoable();
  s.string("random_dir", "",
           "init: random - where config.json and model.safetensors are written (default: the "
           "run directory, or a temporary directory outside a run)");
  s.choice("dtype", "float32", {"float32", "bfloat16"},
           "compute dtype of the model (activations are returned as float32)");
  s.string("tokenizer", "",
           "directory with vocab.json + merges.txt (default: the model directory, then "
           "data/gpt2-tokenizer)");
  return s;
}

std::unique_ptr<Gpt2Source> make_source(const Options& opts, const PluginContext& ctx) {
  SourceOptions so;
  so.device = ctx.device;
  so.dtype = opts.string("dtype") == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  so.tokenizer_dir = opts.string("tokenizer");
  if (opts.string("init") == "pretrained") {
    so.model_dir = pretrained_dir(opts);
    so.model_id = opts.string("model");
    return std::make_unique<Gpt2Source>(so);
  }
  RandomInit init;
  init.config.n_layer = opts.integer("n_layer");
  init.config.n_head = opts.integer("n_head");
  init.config.n_embd = opts.integer("n_embd");
  init.config.n_positions = opts.integer("n_positions");
  init.config.vocab_size = opts.integer("vocab_size");
  if (init.config.n_embd % init.config.n_head != 0)
    opts.fail("n_head",
              cat("n_embd = ", init.config.n_embd, " is not divisible by n_head = ", init.config.n_head));
  init.seed = opts.is_auto("seed") ? ctx.seed : static_cast<std::uint64_t>(opts.integer("seed"));
  so.model_dir = random_dir(opts, ctx, init);
  so.model_id = cat("random:", init.seed);
  write_random_model(so.model_dir, init);
  return std::make_unique<Gpt2Source>(so);
}

}  // namespace saelab::gpt2
