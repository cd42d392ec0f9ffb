// saelab steer: default and steered completions of a prompt, side by side.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <sstream>

#include "cli_util.hpp"
#include "reference_args.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/utf8.hpp"
#include "saelab/stages/inspect.hpp"
#include "saelab/steer/steering.hpp"

namespace saelab::cli {
namespace {

struct SteerArgs {
  std::string target, config, prompt, positions = "all";
  std::vector<std::string> features, directions;
  std::int64_t n = 1, max_new_tokens = 40, width = 0;
  ReferenceArgs reference;
  double temperature = 0.7, top_p = 0.9;
  std::uint64_t seed = 0;
};

EditPositions parse_positions(const std::string& s) {
  if (s == "all") return EditPositions::All;
  if (s == "generated") return EditPositions::Generated;
  throw UsageError(cat("--positions '", s,
                       "' is not one of: all (every position, the prompt's too), generated (the last prompt "
                       "position and every generated one)"));
}

// Splits text into lines of at most `width` code points, at newlines, and at the last space
// when a line is full (mid-word only when a word is longer than a line).
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines(1);
  std::size_t cols = 0, space = std::string::npos, space_cols = 0;  // last space in the line
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_sequence_length(text, i);
    const std::string ch = text.substr(i, len);
    i += len;
    if (ch == "\n") {
      lines.emplace_back();
      cols = 0;
      space = std::string::npos;
      continue;
    }
    if (cols >= width) {
      std::string rest;
      if (space != std::string::npos) {
        rest = lines.back().substr(space + 1);
        lines.back().resize(space);
      }
      lines.push_back(rest);
      cols = space != std::string::npos ? cols - space_cols - 1 : 0;
      space = std::string::npos;
    }
    if (ch == " ") {
      space = lines.back().size();
      space_cols = cols;
    }
    lines.back() += ch;
    ++cols;
  }
  return lines;
}

std::string pad(const std::string& s, std::size_t width) {
  std::size_t cols = 0;
  for (std::size_t i = 0; i < s.size(); i += utf8_sequence_length(s, i)) ++cols;
  return s + std::string(width > cols ? width - cols : 0, ' ');
}

void print_side_by_side(const std::string& a, const std::string& b, std::size_t total) {
  const std::size_t w = std::max<std::size_t>(20, (total - 3) / 2);
  const auto la = wrap(a, w), lb = wrap(b, w);
  std::cout << pad("default", w) << " │ steered\n"
            << std::string(w, '-') << "-┼-" << std::string(w, '-') << "\n";
  for (std::size_t i = 0; i < std::max(la.size(), lb.size()); ++i)
    std::cout << pad(i < la.size() ? la[i] : "", w) << " │ " << (i < lb.size() ? lb[i] : "") << "\n";
}

void add_steer_options(po::options_description& desc, SteerArgs& a) {
  desc.add_options()("target", po::value(&a.target)->required(), "run directory or SAE directory")(
      "prompt", po::value(&a.prompt)->required(), "the text to continue")(
      "feature", po::value(&a.features)->composing(),
      "LATENT:+A | LATENT:-A | LATENT:+Ax | LATENT:clamp=V[x] | LATENT:ablate (repeatable)")(
      "direction", po::value(&a.directions)->composing(),
      "FILE[#TENSOR]:ALPHA, a .npy or safetensors direction")("positions", po::value(&a.positions),
                                                              "all (default) or generated")(
      "n", po::value(&a.n), "completions of each kind, seeds S, S+1, ... (default 1)")(
      "seed", po::value(&a.seed), "first sampling seed (default 0)")(
      "max-new-tokens", po::value(&a.max_new_tokens), "tokens to generate (default 40)")(
      "temperature", po::value(&a.temperature), "sampling temperature, 0 for greedy (default 0.7)")(
      "top-p", po::value(&a.top_p), "nucleus sampling mass (default 0.9)")(
      "width", po::value(&a.width), "terminal columns for the side-by-side view")("json",
                                                                                  "print JSON for scripts")(
      "config", po::value(&a.config),
      "experiment file naming the model (for an SAE directory outside a run)");
  add_reference_options(desc, a.reference, "max activations (the 'x' unit)");
}

void print_steer(const nlohmann::json& out, const SteerArgs& a, const std::vector<FeatureSteer>& features,
                 const std::string& hook) {
  const char* env_cols = std::getenv("COLUMNS");
  const std::size_t cols = a.width > 0 ? static_cast<std::size_t>(a.width)
                           : env_cols  ? static_cast<std::size_t>(std::max(40, std::atoi(env_cols)))
                                       : 100;
  std::cout << "prompt: " << a.prompt << "\nsteering at " << hook << " (" << a.positions << " positions):";
  for (const auto& f : features) std::cout << " " << describe(f);
  for (const auto& d : a.directions) std::cout << " " << d;
  std::cout << "\n";
  for (const auto& c : out["completions"]) {
    std::cout << "\n# seed " << c["seed"].get<std::uint64_t>() << "\n";
    print_side_by_side(c["default"].get<std::string>(), c["steered"].get<std::string>(), cols);
  }
}

}  // namespace

int cmd_steer(const Args& args) {
  po::options_description desc("options");
  SteerArgs a;
  add_steer_options(desc, a);
  po::variables_map vm;
  if (!parse_target_args(
          args, desc, vm,
          "steer RUN_OR_SAE --prompt \"...\" --feature 123:+8 [--feature 77:clamp=0] [--seed S] [--n 3] "
          "[--json]"))
    return 0;
  SAELAB_CHECK(a.n >= 1 && a.n <= 64, UsageError, "--n ", a.n, ": give 1 to 64 completions");
  SAELAB_CHECK(
      !a.features.empty() || !a.directions.empty(), UsageError,
      "nothing to steer with: give --feature LATENT:+A (or clamp=, ablate) or --direction FILE:ALPHA");
  std::vector<FeatureSteer> features;
  bool needs_max = false;
  for (const auto& f : a.features) {
    features.push_back(parse_feature_steer(f));
    needs_max = needs_max || features.back().times_max;
  }
  std::vector<DirectionSteer> directions;
  for (const auto& d : a.directions) directions.push_back(parse_direction_steer(d));
  const EditPositions where = parse_positions(a.positions);
  Inspection in = open_inspection(a.target, a.config);
  LatentReference ref;
  if (needs_max) {
    ref = reference_of(in, a.reference, {});
    SAELAB_CHECK(
        ref.rows > 0, UsageError,
        "an 'x' amount is a multiple of the latent's largest activation, and this SAE has no stored rows "
        "to measure it on; pass --reference FILE (text), or give amounts in activation units");
  }
  const SteerTarget target{in.sae.sae, in.hook, in.sae.sae->shape().d_in, needs_max ? &ref : nullptr};
  GenerateOptions o;
  o.max_new_tokens = a.max_new_tokens;
  o.temperature = a.temperature;
  o.top_p = a.top_p;
  o.stop_token = in.source->info().eos_token;
  std::vector<std::int32_t> prompt = in.source->tokenize(a.prompt);
  if (in.prepend_bos && in.source->info().bos_token >= 0)
    prompt.insert(prompt.begin(), in.source->info().bos_token);
  const auto edits = steering_edits(target, features, directions, where);
  nlohmann::json out = {{"prompt", a.prompt}, {"hook", in.hook}, {"positions", a.positions}};
  for (const auto& f : features) out["features"].push_back(describe(f));
  for (const auto& d : a.directions) out["directions"].push_back(d);
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t generated = 0;
  for (std::int64_t i = 0; i < a.n; ++i) {
    o.seed = a.seed + static_cast<std::uint64_t>(i);
    o.edits.clear();
    const auto plain = in.source->generate(prompt, o);
    o.edits = edits;
    const auto steered = in.source->generate(prompt, o);
    generated += static_cast<std::int64_t>(plain.size() + steered.size());
    out["completions"].push_back(
        {{"seed", o.seed}, {"default", in.source->decode(plain)}, {"steered", in.source->decode(steered)}});
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out["tokens_per_second"] = static_cast<double>(generated) / s;
  if (vm.count("json")) {
    std::cout << out.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  print_steer(out, a, features, in.hook);
  log::info("steer: ", generated, " tokens in ", s, " s (", static_cast<double>(generated) / s, " tokens/s)");
  return 0;
}

}  // namespace saelab::cli
