// evaluate and report: a saved SAE (the run's, or any SAELens directory) spliced into the source.
#include "saelab/corpus.hpp"
#include "saelab/fs_util.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "saelab/interfaces/reporter.hpp"
#include "saelab/log.hpp"
#include "saelab/sae_io.hpp"
#include "stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

// Builds the SAE plugin that declares cfg.json's architecture and loads the weights into it.
std::shared_ptr<SaeArchitecture> load_sae(const StageContext& ctx, const fs::path& dir, SaeMeta& meta) {
  SaeDirectory saved = load_sae_directory(dir);
  const std::string arch = saved.cfg.value("architecture", "");
  const FactoryInfo* f = ctx.registry.find_by_tag("sae", arch);
  if (!f)
    throw Error(cat("'", (dir / "cfg.json").string(), "': no loaded SAE plugin handles architecture '", arch,
                    "'; loaded SAE plugins: ", [&] {
                      std::string s;
                      for (auto& n : ctx.registry.names("sae")) s += (s.empty() ? "" : ", ") + n;
                      return s;
                    }()));
  Options opts = default_options(f->schema, "sae");
  for (const auto& spec : f->schema.specs()) {
    auto it = saved.cfg.find(spec.key);
    if (it == saved.cfg.end() || it->is_null()) continue;
    if (spec.type == OptionType::Int && it->is_number_integer())
      opts.set_given(spec.key, it->get<std::int64_t>());
    else if (spec.type == OptionType::Float && it->is_number())
      opts.set_given(spec.key, it->get<double>());
  }
  auto sae = ctx.registry.create<SaeArchitecture>(f->name, opts, ctx.plugin_ctx);
  safetensors::TensorMap weights;
  for (auto& [name, t] : saved.weights) weights[name] = t.to(torch::kFloat32);
  sae->load_state(weights);
  sae->to(ctx.plugin_ctx.device);
  meta = sae_meta_from_cfg(saved.cfg, (dir / "cfg.json").string());
  return sae;
}

fs::path sae_dir(const StageContext& ctx) {
  fs::path dir = ctx.request.sae_dir.empty() ? ctx.run_dir / "sae" : ctx.request.sae_dir;
  if (!fs::exists(dir / "cfg.json"))
    throw UsageError(cat("no saved SAE at '", dir.string(),
                         "'; run the train stage first, or pass --sae DIR "
                         "(a SAELens directory with cfg.json and sae_weights.safetensors)"));
  return dir;
}

// Held-out sequences: the corpus after the ones harvest consumed (evaluate.skip_sequences: auto).
std::unique_ptr<TokenBatches> held_out_tokens(StageContext& ctx, const std::string& section) {
  const Options& o = ctx.options();
  auto tokens = std::make_unique<TokenBatches>(corpus_config(o), *ctx.source());
  std::int64_t skip = 0;
  if (!o.is_auto(section + ".skip_sequences")) {
    skip = o.integer(section + ".skip_sequences");
  } else if (fs::exists(ctx.run_dir / "run.json")) {
    auto run = nlohmann::json::parse(read_file(ctx.run_dir / "run.json", 16 << 20, "run record"));
    auto rows = run["stages"]["harvest"]["summary"].value("rows", std::int64_t{0});
    const std::int64_t per_seq =
        o.integer("corpus.context_size") - (o.boolean("harvest.exclude_bos") ? 1 : 0);
    skip = per_seq > 0 ? (rows + per_seq - 1) / per_seq : 0;
  }
  if (skip > 0) {
    log::info(section, ": skipping the first ", skip, " sequences (used for harvesting)");
    tokens->skip(skip);
  }
  return tokens;
}

void refuse_existing(const StageContext& ctx, const fs::path& out, const char* what) {
  if (!fs::exists(out)) return;
  if (!ctx.overwrite)
    throw UsageError(
        cat("'", out.string(), "' already exists; pass --overwrite to write the ", what, " again"));
  fs::remove_all(out);
}

}  // namespace

nlohmann::json run_evaluate(StageContext& ctx) {
  const fs::path out = ctx.run_dir / "eval.json";
  refuse_existing(ctx, out, "evaluation");
  SaeMeta meta;
  auto sae = load_sae(ctx, sae_dir(ctx), meta);
  auto tokens = held_out_tokens(ctx, "evaluate");
  auto evaluator = ctx.registry.create<Evaluator>(ctx.options().plugin("evaluate.evaluator"), ctx.plugin_ctx);
  EvalContext ec{*sae, ctx.source().get(), meta.hook_name, tokens.get(), nullptr, 1.0};
  nlohmann::json result = evaluator->evaluate(ec);
  write_file_atomic(out, result.dump(2) + "\n");
  log::info("evaluate: wrote ", out.string());
  return result.contains("summary") ? result["summary"] : nlohmann::json::object();
}

nlohmann::json run_report(StageContext& ctx) {
  const fs::path out = ctx.run_dir / "report";
  refuse_existing(ctx, out, "report");
  SaeMeta meta;
  auto sae = load_sae(ctx, sae_dir(ctx), meta);
  auto tokens = held_out_tokens(ctx, "report");
  nlohmann::json eval;
  if (fs::exists(ctx.run_dir / "eval.json"))
    eval = nlohmann::json::parse(read_file(ctx.run_dir / "eval.json", 256 << 20, "evaluation"));
  auto reporter = ctx.registry.create<Reporter>(ctx.options().plugin("report.reporter"), ctx.plugin_ctx);
  fs::create_directories(out);
  ReportContext rc{*sae, ctx.source().get(), meta.hook_name, tokens.get(), nullptr, eval, out, 1.0};
  reporter->write(rc);
  log::info("report: wrote ", (out / "index.html").string());
  return {{"index", (out / "index.html").string()}};
}

}  // namespace saelab
