// saelab monitor: watched latents over a stream of documents, one JSON line per window that fired.
#include <chrono>
#include <fstream>
#include <iostream>

#include "cli_util.hpp"
#include "reference_args.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/runtime.hpp"
#include "saelab/stages/inspect.hpp"
#include "saelab/steer/monitor.hpp"

namespace saelab::cli {
namespace {

struct MonitorArgs {
  std::string target, config, input = "-", format = "auto", text_field = "text", output;
  std::vector<std::string> watch;
  ReferenceArgs reference;
  double quantile = 0.999;
  std::int64_t window = 128, batch = 8, context = 8, max_doc_kib = 1024;
};

std::string input_format(const MonitorArgs& a) {
  if (a.format != "auto") return a.format;
  const auto n = a.input.size();
  return n >= 6 && a.input.compare(n - 6, 6, ".jsonl") == 0 ? "jsonl" : "text";
}

void log_watches(const std::vector<WatchedLatent>& w) {
  for (const auto& x : w)
    log::info("monitor: latent ", x.latent, " fires above ", x.threshold, " (", x.origin, ")");
}

void add_monitor_options(po::options_description& desc, MonitorArgs& a) {
  desc.add_options()("target", po::value(&a.target)->required(), "run directory or SAE directory")(
      "watch", po::value(&a.watch)->composing()->required(),
      "LATENT, LATENT:THRESHOLD or LATENT:qQUANTILE (repeatable)")("input", po::value(&a.input),
                                                                   "file to read, or - for stdin (default)")(
      "format", po::value(&a.format),
      "text (documents separated by blank lines), jsonl, or auto (by extension)")(
      "text-field", po::value(&a.text_field), "JSONL field holding the text (default text)")(
      "quantile", po::value(&a.quantile),
      "default threshold: this quantile of the reference (default 0.999)")("window", po::value(&a.window),
                                                                           "tokens per window (default 128)")(
      "batch", po::value(&a.batch), "windows per forward pass (default 8)")(
      "context", po::value(&a.context), "tokens of context each side of a hit (default 8)")(
      "max-document-kib", po::value(&a.max_doc_kib), "longer documents are read in parts (default 1024)")(
      "all", "write a line for every window, fired or not")("output", po::value(&a.output),
                                                            "write the JSON lines here instead of stdout")(
      "config", po::value(&a.config),
      "experiment file naming the model (for an SAE directory outside a run)");
  add_reference_options(desc, a.reference, "thresholds");
}

}  // namespace

int cmd_monitor(const Args& args) {
  po::options_description desc("options");
  MonitorArgs a;
  add_monitor_options(desc, a);
  po::variables_map vm;
  if (!parse_target_args(
          args, desc, vm,
          "monitor RUN_OR_SAE --watch 123[:THRESHOLD|:qQ] ... [--input FILE|-] [--format text|jsonl]\n"
          "exit code: 0 nothing fired, 3 a watched latent fired, 1 failure, 2 usage error"))
    return 0;
  std::vector<WatchSpec> specs;
  std::vector<std::int64_t> need_reference;
  for (const auto& w : a.watch) {
    specs.push_back(parse_watch(w));
    if (specs.back().threshold < 0) need_reference.push_back(specs.back().latent);
  }
  const std::string format = input_format(a);
  std::ifstream file;
  if (a.input != "-") {
    file.open(a.input, std::ios::binary);
    SAELAB_CHECK(file, UsageError, "cannot open --input '", a.input, "'");
  }
  std::ofstream out_file;
  if (!a.output.empty()) {
    out_file.open(a.output, std::ios::binary | std::ios::trunc);
    SAELAB_CHECK(out_file, UsageError, "cannot write --output '", a.output, "'");
  }
  std::ostream& out = a.output.empty() ? std::cout : out_file;
  Inspection in = open_inspection(a.target, a.config);
  LatentReference ref;
  if (!need_reference.empty()) {
    ref = reference_of(in, a.reference, need_reference);
    SAELAB_CHECK(
        ref.rows > 0, UsageError, "thresholds from quantiles need reference activations, and '", a.target,
        "' has no stored rows; pass --reference FILE (text) or give thresholds (--watch LATENT:4.5)");
  }
  const auto watched =
      resolve_watches(specs, a.quantile, ref.rows > 0 ? &ref : nullptr, in.sae.sae->shape().d_sae);
  log_watches(watched);
  MonitorOptions mo;
  mo.window = a.window;
  mo.batch = a.batch;
  mo.context_tokens = a.context;
  mo.skip = in.rows.first_position;
  mo.excluded_tokens = in.rows.excluded_tokens;
  mo.prepend_bos = in.prepend_bos && in.source->info().bos_token >= 0;
  mo.all_windows = vm.count("all") > 0;
  SAELAB_CHECK(a.max_doc_kib >= 1, UsageError, "--max-document-kib must be at least 1");
  Monitor monitor(*in.source, *in.sae.sae, in.hook, watched, mo, [&](const nlohmann::json& line) {
    out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    out.flush();
  });
  DocumentStream stream(a.input == "-" ? std::cin : file, format, a.input == "-" ? "stdin" : a.input,
                        a.text_field, static_cast<std::size_t>(a.max_doc_kib) * 1024);
  const auto t0 = std::chrono::steady_clock::now();
  StreamDocument doc;
  while (stream.next(doc)) monitor.add(doc);
  monitor.flush();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const MonitorStats& st = monitor.stats();
  log::info("monitor: ", st.documents, " documents, ", st.windows, " windows, ", st.tokens, " tokens in ", s,
            " s: ", static_cast<double>(st.tokens) / std::max(s, 1e-9), " tokens/s (model ", st.model_seconds,
            " s); ", st.fired_windows, " windows fired, ", st.hits, " hits; ", stream.bad_records(),
            " records skipped; peak memory ", peak_rss_mib(), " MiB");
  return st.fired_windows > 0 ? 3 : 0;
}

}  // namespace saelab::cli
