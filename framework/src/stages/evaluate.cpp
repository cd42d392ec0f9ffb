// evaluate and report: a saved SAE (the run's, or any SAELens directory) spliced into the source.
#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <optional>

#include "saelab/data/corpus.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "saelab/interfaces/reporter.hpp"
#include "saelab/core/log.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/sae/load.hpp"
#include "stages/stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

fs::path sae_dir(const StageContext& ctx) {
  fs::path dir = ctx.request.sae_dir.empty() ? ctx.run_dir / "sae" : ctx.request.sae_dir;
  if (!fs::exists(dir / "cfg.json"))
    throw UsageError(cat("no saved SAE at '", dir.string(),
                         "'; run the train stage first, or pass --sae DIR "
                         "(a SAELens directory with cfg.json and sae_weights.safetensors)"));
  return dir;
}

// How many corpus sequences the run's harvest consumed (run.json), if it recorded it.
std::optional<std::int64_t> harvested_sequences(const StageContext& ctx) {
  if (!fs::exists(ctx.run_dir / "run.json")) return std::nullopt;
  auto run = nlohmann::json::parse(read_file(ctx.run_dir / "run.json", 16 << 20, "run record"));
  if (!run.contains("stages") || !run["stages"].contains("harvest")) return std::nullopt;
  const auto& summary = run["stages"]["harvest"]["summary"];
  if (summary.contains("sequences")) return summary.value("sequences", std::int64_t{0});
  if (!summary.contains("rows")) return std::nullopt;
  // Runs harvested before the summary recorded its sequence count.
  const Options& o = ctx.options();
  const std::int64_t per_seq = o.integer("corpus.context_size") - (o.boolean("harvest.exclude_bos") ? 1 : 0);
  const auto rows = summary.value("rows", std::int64_t{0});
  return per_seq > 0 ? (rows + per_seq - 1) / per_seq : 0;
}

struct HeldOut {
  std::unique_ptr<TokenBatches> tokens;
  nlohmann::json record;  // which sequences, written to eval.json
};

// Held-out sequences: the corpus after the ones harvest consumed (skip_sequences: auto), or after
// an explicit skip_sequences, with a warning when that reaches into the harvested range.
HeldOut held_out_tokens(StageContext& ctx, const std::string& section) {
  const Options& o = ctx.options();
  HeldOut h{std::make_unique<TokenBatches>(corpus_config(o), *ctx.source()), {}};
  const auto harvested = harvested_sequences(ctx);
  const std::string key = section + ".skip_sequences";
  const bool automatic = o.is_auto(key);
  const std::int64_t skip = automatic ? harvested.value_or(0) : o.integer(key);
  const bool overlaps = harvested && skip < *harvested;
  const char* what = section == "evaluate" ? "evaluation" : "report";
  if (overlaps)
    log::warn(o.where(key).str(), ": ", key, " is ", skip, " but this run harvested sequences 0..",
              *harvested - 1, " for training: the ", what,
              " will see sequences the SAE was trained on. Set it to ", *harvested,
              " or more, or to auto, for a held-out ", what);
  if (skip > 0) {
    log::info(section, ": skipping the first ", skip, " sequences",
              automatic ? " (used for harvesting)" : cat(" (", key, ")"));
    h.tokens->skip(skip);
  }
  h.record = {{"first_sequence", skip},
              {"skip_sequences", automatic ? "auto" : "explicit"},
              {"harvested_sequences", harvested ? nlohmann::json(*harvested) : nlohmann::json(nullptr)},
              {"overlaps_training", overlaps},
              {"corpus_fingerprint", h.tokens->fingerprint()}};
  return h;
}

// "3.816" for a number at `path` of j, "-" when the evaluator did not write one.
std::string metric(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return "-";
    at = &(*at)[key];
  }
  if (!at->is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", at->get<double>());
  return buf;
}

// The figures a researcher looks at first, in the log and on the terminal.
void log_headline(const nlohmann::json& r) {
  log::info("evaluate: cross-entropy (nats/token) clean ", metric(r, {"downstream", "ce_loss_clean"}),
            ", with the SAE spliced in ", metric(r, {"downstream", "ce_loss_spliced"}), ", zero-ablated ",
            metric(r, {"downstream", "ce_loss_ablated"}), "; CE loss score ",
            metric(r, {"downstream", "ce_loss_score"}), "; explained variance ",
            metric(r, {"reconstruction", "explained_variance"}), "; L0 ", metric(r, {"sparsity", "l0"}));
}

void refuse_existing(const StageContext& ctx, const fs::path& out, const char* what) {
  if (!fs::exists(out)) return;
  if (!ctx.overwrite)
    throw UsageError(
        cat("'", out.string(), "' already exists; pass --overwrite to write the ", what, " again"));
  fs::remove_all(out);
}

}  // namespace

namespace {

nlohmann::json evaluate_one(StageContext& ctx, const fs::path& dir, const fs::path& out) {
  refuse_existing(ctx, out, "evaluation");
  const LoadedSae loaded = load_sae(ctx.registry, dir, ctx.plugin_ctx);
  HeldOut held = held_out_tokens(ctx, "evaluate");
  auto evaluator = ctx.registry.create<Evaluator>(ctx.options().plugin("evaluate.evaluator"), ctx.plugin_ctx);
  EvalContext ec{*loaded.sae,
                 ctx.source().get(),
                 loaded.meta.hook_name,
                 held.tokens.get(),
                 nullptr,
                 1.0,
                 row_filter(ctx.options(), ctx.source()->info())};
  const CorpusConfig corpus = corpus_config(ctx.options());
  ec.corpus = &corpus;
  ec.cache = ctx.request.eval_cache.get();
  ec.target_hook = loaded.meta.hook_name_out;
  nlohmann::json result = evaluator->evaluate(ec);
  held.record["last_sequence"] = nullptr;
  if (result.contains("counts") && result["counts"].contains("sequences")) {
    const auto n = result["counts"]["sequences"].get<std::int64_t>();
    held.record["sequences"] = n;
    held.record["last_sequence"] = held.record["first_sequence"].get<std::int64_t>() + n - 1;
  }
  result["held_out"] = held.record;
  write_file_atomic(out, result.dump(2) + "\n");
  log_headline(result);
  log::info("evaluate: wrote ", out.string());
  return result.contains("summary") ? result["summary"] : nlohmann::json::object();
}

// The SAEs a train stage with train.hooks or train.saes wrote: saes/<name>/sae, by name.
std::vector<fs::path> per_hook_runs(const StageContext& ctx) {
  std::vector<fs::path> runs;
  const fs::path saes = ctx.run_dir / "saes";
  std::error_code ec;
  if (!ctx.request.sae_dir.empty() || fs::exists(ctx.run_dir / "sae") || !fs::is_directory(saes, ec))
    return runs;
  for (const auto& entry : fs::directory_iterator(saes))
    if (fs::exists(entry.path() / "sae" / "cfg.json")) runs.push_back(entry.path());
  std::sort(runs.begin(), runs.end());
  return runs;
}

}  // namespace

nlohmann::json run_evaluate(StageContext& ctx) {
  const std::vector<fs::path> runs = per_hook_runs(ctx);
  if (runs.empty()) return evaluate_one(ctx, sae_dir(ctx), ctx.run_dir / "eval.json");
  nlohmann::json summaries = nlohmann::json::object();
  for (const auto& run : runs) {
    log::info("evaluate: ", run.filename().string());
    summaries[run.filename().string()] = evaluate_one(ctx, run / "sae", run / "eval.json");
  }
  return {{"saes", summaries}};
}

std::unique_ptr<ActivationReader> corpus_order_reader(ActivationStore& store, const fs::path& dir) {
  if (dir.empty() || !fs::exists(dir / "manifest.json") || !store.stats(dir)) return nullptr;
  ReaderOptions ro;
  ro.shuffle = false;
  ro.batch_rows = 1024;
  ro.buffer_rows = 1024;
  return store.open_reader(dir, ro);
}

namespace {

// The store rows of the SAE's own hook: the store itself, or its sub-store in a store per hook.
std::unique_ptr<ActivationReader> hook_reader(StageContext& ctx, const std::string& hook) {
  const fs::path root = ctx.store_dir();
  return corpus_order_reader(*ctx.store(), fs::exists(root / "manifest.json") ? root : root / hook);
}

// One SAE's report: `run` holds its eval.json and gets report/.
nlohmann::json report_one(StageContext& ctx, const fs::path& dir, const fs::path& run) {
  const fs::path out = run / "report";
  // No removal here: the reporter replaces an existing report only once the new one is complete.
  if (fs::exists(out) && !ctx.overwrite)
    throw UsageError(cat("'", out.string(), "' already exists; pass --overwrite to write the report again"));
  const LoadedSae loaded = load_sae(ctx.registry, dir, ctx.plugin_ctx);
  HeldOut held = held_out_tokens(ctx, "report");
  nlohmann::json eval;
  if (fs::exists(run / "eval.json"))
    eval = nlohmann::json::parse(read_file(run / "eval.json", 256 << 20, "evaluation"));
  auto reporter = ctx.registry.create<Reporter>(ctx.options().plugin("report.reporter"), ctx.plugin_ctx);
  auto reader = hook_reader(ctx, loaded.meta.hook_name);
  ReportContext rc{*loaded.sae,
                   ctx.source().get(),
                   loaded.meta.hook_name,
                   held.tokens.get(),
                   reader.get(),
                   eval,
                   out,
                   1.0,
                   row_filter(ctx.options(), ctx.source()->info()),
                   ctx.run_dir,
                   ctx.config.resolved};
  reporter->write(rc);
  log::info("report: wrote ", (out / "index.html").string());
  return {{"index", (out / "index.html").string()}};
}

}  // namespace

nlohmann::json run_report(StageContext& ctx) {
  const std::vector<fs::path> runs = per_hook_runs(ctx);
  if (runs.empty()) return report_one(ctx, sae_dir(ctx), ctx.run_dir);
  nlohmann::json indexes = nlohmann::json::object();
  for (const auto& run : runs) indexes[run.filename().string()] = report_one(ctx, run / "sae", run)["index"];
  return {{"saes", indexes}};
}

}  // namespace saelab
