// saelab heatmap / saelab features: an SAE's latents on a given text.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_util.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/numbers.hpp"
#include "saelab/features/heatmap.hpp"
#include "saelab/stages/inspect.hpp"

namespace saelab::cli {

namespace {

struct TextArgs {
  std::string target, config, text, text_file;
};

void add_text_options(po::options_description& desc, TextArgs& a) {
  desc.add_options()("target", po::value(&a.target)->required(), "run directory or SAE directory")(
      "text", po::value(&a.text), "the text to analyse")("text-file", po::value(&a.text_file),
                                                         "read the text from this file")(
      "config", po::value(&a.config),
      "experiment file naming the model (for an SAE directory outside a run)");
}

std::string the_text(const TextArgs& a) {
  SAELAB_CHECK(a.text.empty() != a.text_file.empty(), UsageError,
               "give the text with exactly one of --text \"...\" and --text-file FILE");
  if (!a.text.empty()) return a.text;
  return read_file(a.text_file, std::uintmax_t(64) << 20, "text file");
}

std::vector<std::int64_t> parse_latents(const std::string& list) {
  std::vector<std::int64_t> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto v = parse_integer(item);
    SAELAB_CHECK(v && *v >= 0, UsageError, "--features: '", item,
                 "' is not a latent index; write non-negative integers separated by commas, e.g. 12,99");
    out.push_back(*v);
  }
  SAELAB_CHECK(!out.empty(), UsageError, "--features is empty; name latents, e.g. --features 12,99");
  return out;
}

TextLatents analyse(const TextArgs& a, Inspection& in) {
  torch::NoGradGuard no_grad;
  return latents_on_text(*in.source, *in.sae.sae, in.hook, the_text(a), 1.0, in.prepend_bos,
                         in.rows.first_position);
}

}  // namespace

int cmd_heatmap(const Args& args) {
  po::options_description desc("options");
  TextArgs a;
  std::string features, html;
  std::int64_t top = 5;
  add_text_options(desc, a);
  desc.add_options()("features", po::value(&features), "latents to show, e.g. 12,99")(
      "top", po::value(&top), "show the N latents with the highest peak on the text (default 5)")(
      "html", po::value(&html), "also write a standalone HTML page to this file");
  po::positional_options_description pos;
  pos.add("target", 1);
  po::variables_map vm;
  if (!parse_args(
          args, desc, pos, vm,
          "heatmap RUN_OR_SAE --text \"...\" | --text-file F [--features 12,99 | --top 5] [--html OUT]"))
    return 0;
  SAELAB_CHECK(!(vm.count("features") && vm.count("top")), UsageError,
               "--features and --top contradict each other; pass one");
  SAELAB_CHECK(top >= 1, UsageError, "--top ", top, ": give a positive number of latents");
  Inspection in = open_inspection(a.target, a.config);
  const TextLatents t = analyse(a, in);
  const auto peaks = top_latents(t, std::max<std::int64_t>(top, 10));
  std::vector<std::int64_t> shown;
  if (!features.empty())
    shown = parse_latents(features);
  else
    for (std::size_t i = 0; i < std::min<std::size_t>(static_cast<std::size_t>(top), peaks.size()); ++i)
      shown.push_back(peaks[i].id);
  const bool tty = isatty(STDOUT_FILENO) == 1;
  std::cout << terminal_heatmap(t, shown, tty);
  std::cout << (tty ? "\nmost active latents (peak, at token):\n"
                    : "\n# most active latents\nlatent\tpeak\tpos\n");
  for (const auto& p : peaks)
    std::cout << (tty ? "  " : "") << p.id << "\t" << p.peak << "\t" << p.position << "\n";
  if (!html.empty()) {
    write_file_atomic(html, html_heatmap(t, shown, peaks, "saelab heatmap: " + a.target));
    std::cerr << "wrote " << html << "\n";
  }
  return 0;
}

int cmd_features(const Args& args) {
  po::options_description desc("options");
  TextArgs a;
  std::int64_t per_token = 5;
  add_text_options(desc, a);
  desc.add_options()("per-token", po::value(&per_token), "latents listed per token (default 5)")(
      "json", "print JSON for scripts");
  po::positional_options_description pos;
  pos.add("target", 1);
  po::variables_map vm;
  if (!parse_args(args, desc, pos, vm,
                  "features RUN_OR_SAE --text \"...\" | --text-file F [--per-token 5] [--json]"))
    return 0;
  SAELAB_CHECK(per_token >= 1, UsageError, "--per-token ", per_token, ": give a positive number");
  Inspection in = open_inspection(a.target, a.config);
  const TextLatents t = analyse(a, in);
  if (vm.count("json"))
    std::cout << text_features_json(t, per_token).dump(1) << "\n";
  else
    std::cout << text_features_table(t, per_token);
  return 0;
}

}  // namespace saelab::cli
