// saelab: train, evaluate and inspect sparse autoencoders on transformer activations.
#include <iostream>
#include <map>

#include <boost/program_options/errors.hpp>
#include <torch/types.h>

#include "commands.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/version.hpp"

namespace {

constexpr const char* kUsage = R"(usage: saelab <command> [options]

Experiments (FILE is a YAML experiment, see docs/config.md):
  run FILE        run the experiment's stages: harvest -> train -> evaluate -> report
  harvest FILE    only harvest activations into the store
  train FILE      only train the SAE on the harvested store
  eval FILE       only evaluate the trained SAE (or --sae DIR)
  report FILE     only write the HTML report
  validate FILE   check a file without running anything
  sweep FILE      run a grid of settings (--grid key=v1,v2 ...) as sibling runs sharing one harvest
  compare RUN...  runs' (or a sweep's) metrics side by side, with frontier plots (SVG and PNG)

Looking at features (RUN is a run directory, or an SAE directory with --config FILE):
  heatmap RUN --text "..."   the text coloured by the most active latents (or --features 12,99)
  features RUN --text "..."  per token, its most active latents (--json for scripts)

Using features:
  steer RUN --prompt "..." --feature 123:+8   default and steered completions side by side
  monitor RUN --watch 123 [--input F]         watched latents over text or JSONL (exit 3: fired)
  serve RUN                                   a local explorer in the browser (127.0.0.1:8765)

Tools:
  plugins         list loaded plugins (kind, name, version, file)
  doctor          show device, threads, BLAS and its measured speed
  config-docs     print the configuration reference (docs/config.md)
  store info DIR  describe an activation store (--verify checks every shard)
  tokenize        tokenize a text file (GPT-2's bundled tokenizer, a directory's or a GGUF's)
  fetch-model ID  download config.json + model.safetensors from the Hugging Face hub

Every command takes --help. Exit codes: 0 ok, 2 usage or configuration error, 1 runtime failure.
)";

int dispatch(const std::string& verb, const saelab::cli::Args& args) {
  using namespace saelab::cli;
  if (verb == "run" || verb == "harvest" || verb == "train" || verb == "eval" || verb == "report")
    return cmd_run(verb, args);
  if (verb == "validate") return cmd_validate(args);
  if (verb == "sweep") return cmd_sweep(args);
  if (verb == "compare") return cmd_compare(args);
  if (verb == "plugins") return cmd_plugins(args);
  if (verb == "doctor") return cmd_doctor(args);
  if (verb == "config-docs") return cmd_config_docs(args);
  if (verb == "store") return cmd_store(args);
  if (verb == "tokenize") return cmd_tokenize(args);
  if (verb == "fetch-model") return cmd_fetch_model(args);
  if (verb == "heatmap") return cmd_heatmap(args);
  if (verb == "features") return cmd_features(args);
  if (verb == "steer") return cmd_steer(args);
  if (verb == "monitor") return cmd_monitor(args);
  if (verb == "serve") return cmd_serve(args);
  if (verb == "--version" || verb == "version") {
    std::cout << "saelab " << saelab::kVersion << "\n";
    return 0;
  }
  if (verb == "--help" || verb == "-h" || verb == "help") {
    std::cout << kUsage;
    return 0;
  }
  throw saelab::UsageError(saelab::cat("unknown command '", verb, "'\n", kUsage));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  saelab::cli::Args args(argv + 2, argv + argc);
  try {
    return dispatch(argv[1], args);
  } catch (const saelab::UsageError& e) {
    saelab::log::error(e.what());
    return 2;
  } catch (const saelab::ConfigError& e) {
    saelab::log::error(e.what());
    return 2;
  } catch (const boost::program_options::error& e) {
    saelab::log::error(argv[1], ": ", e.what(), " (see saelab ", argv[1], " --help)");
    return 2;
  } catch (const c10::Error& e) {
    saelab::log::error("LibTorch: ", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    saelab::log::error(e.what());
    return 1;
  }
}
