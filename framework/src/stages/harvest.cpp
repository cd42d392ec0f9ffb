// harvest: corpus -> source -> store, resumable at shard (sequence) granularity.
#include <algorithm>

#include <c10/core/InferenceMode.h>
#include <torch/types.h>

#include "saelab/data/corpus.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/core/version.hpp"
#include "stages/hook_stores.hpp"
#include "stages/stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

RowFilter row_filter(const Options& o, const SourceInfo& info) {
  const std::int64_t context = o.integer("corpus.context_size");
  const bool bos = o.boolean("harvest.exclude_bos") && o.boolean("corpus.prepend_bos");
  RowFilter filter;
  filter.first_position = (bos ? 1 : 0) + o.integer("harvest.exclude_first_positions");
  if (filter.first_position >= context)
    o.fail("harvest.exclude_first_positions",
           cat("leaves no position of a ", context, "-token sequence to harvest"));
  if (o.boolean("harvest.exclude_special_tokens")) filter.excluded_tokens = info.special_tokens;
  return filter;
}

namespace {

// One hook's store being written: rows of sequences below `skip_below` are already committed
// there (a writer that got one commit further than the others before a crash).
struct HookWriter {
  std::string hook;
  fs::path dir;
  std::unique_ptr<ActivationStoreWriter> writer;
  std::int64_t skip_below = 0;
};

// The rows of sequences ≥ first (they come in sequence order).
ActivationRows rows_from_sequence(const ActivationRows& r, std::int64_t first) {
  const auto keep = (r.sequence >= first).nonzero().flatten();
  if (keep.numel() == r.sequence.numel()) return r;
  return {r.activations.index_select(0, keep), r.tokens.index_select(0, keep),
          r.sequence.index_select(0, keep), r.position.index_select(0, keep)};
}

// Removes an existing store, or refuses it, or continues it (true).
bool prepare_store_dir(const StageContext& ctx, const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec) || fs::is_empty(dir, ec)) return false;
  if (ctx.overwrite) {
    fs::remove_all(dir);
    return false;
  }
  if (ctx.resume) return true;
  throw UsageError(cat("activation store '", dir.string(),
                       "' already exists; pass --resume to continue "
                       "harvesting into it or --overwrite to harvest again"));
}

// One writer per hook, each resuming its own store when `resume`.
std::vector<HookWriter> open_writers(StageContext& ctx, const std::vector<std::string>& hooks,
                                     const StoreMeta& meta, bool multi, bool resume) {
  const fs::path root = ctx.store_dir();
  const SourceInfo& info = ctx.source()->info();
  SAELAB_CHECK(!resume || multi == !fs::exists(root / "manifest.json"), UsageError, "cannot resume into '",
               root.string(), "': it holds a ", multi ? "one-hook store" : "store per hook",
               " but this experiment harvests ", multi ? "harvest.hooks" : "one harvest.hook",
               "; pass --overwrite to harvest again, or choose another harvest.store_dir");
  std::vector<HookWriter> writers;
  for (const auto& hook : hooks) {
    StoreMeta m = meta;
    m.hook = hook;
    m.d = info.hooks.at(hook);
    HookWriter w{hook, multi ? root / hook : root, nullptr, 0};
    w.writer = ctx.store()->open_writer(w.dir, m, resume && fs::exists(w.dir));
    w.skip_below = w.writer->committed_sequences();
    writers.push_back(std::move(w));
  }
  return writers;
}

}  // namespace

nlohmann::json run_harvest(StageContext& ctx) {
  const Options& o = ctx.options();
  HarvestSettings h = harvest_settings(o);
  auto source = ctx.source();
  const SourceInfo& info = source->info();
  const std::vector<std::string> hooks = harvest_hooks(o, info);
  CorpusConfig cc = corpus_config(o);
  if (info.max_context > 0 && cc.context_size > info.max_context)
    o.fail("corpus.context_size",
           cat(cc.context_size, " is longer than the model's context (", info.max_context, ")"));
  TokenBatches corpus(cc, *source);

  StoreMeta meta;
  meta.model_id = info.model_id;
  meta.config_hash = info.config_hash;
  meta.context_size = cc.context_size;
  meta.prepend_bos = cc.prepend_bos;
  meta.exclude_bos = h.exclude_bos && cc.prepend_bos;
  meta.tokenizer_sha256 = info.tokenizer_sha256;
  meta.corpus_fingerprint = corpus.fingerprint();
  meta.saelab_version = kVersion;

  const fs::path root = ctx.store_dir();
  const bool multi = multi_hook_harvest(o);
  const bool resume = prepare_store_dir(ctx, root);
  std::vector<HookWriter> writers = open_writers(ctx, hooks, meta, multi, resume);
  std::int64_t start = writers.front().skip_below;  // the first sequence some store still lacks
  for (const auto& w : writers) start = std::min(start, w.skip_below);
  // Every hook stores the same positions, so the rows before `start` are those of the store that
  // stops there; harvest.tokens counts rows of one hook.
  std::int64_t rows = 0;
  for (const auto& w : writers)
    if (w.skip_below == start) rows = w.writer->committed_rows();
  corpus.skip(start);
  if (resume)
    log::info("harvest: resuming at sequence ", start, " (", rows, " rows of ", hooks.front(), " stored)");

  const RowFilter filter = row_filter(o, info);
  // An estimate for sizing requests: special tokens make the true count per sequence vary.
  const std::int64_t rows_per_seq = cc.context_size - filter.first_position;
  Progress progress("harvest", h.tokens, "tok");
  progress.update(rows);
  c10::InferenceMode guard;
  while (rows < h.tokens) {
    std::int64_t need = (h.tokens - rows + rows_per_seq - 1) / rows_per_seq;
    std::int64_t first_seq = corpus.sequences_emitted();
    torch::Tensor seqs = corpus.next(std::min(need, h.batch_sequences));
    if (seqs.size(0) == 0) {
      log::warn("harvest: the corpus ran out after ", rows, " rows; harvest.tokens asked for ", h.tokens);
      break;
    }
    auto acts = source->run_with_hooks(seqs.to(ctx.plugin_ctx.device), hooks);
    for (auto& w : writers) {
      ActivationRows r = harvest_rows(acts.at(w.hook), seqs, first_seq, filter);
      if (&w == &writers.front()) rows += r.tokens.size(0);
      if (first_seq < w.skip_below) r = rows_from_sequence(r, w.skip_below);
      if (r.tokens.size(0) > 0) w.writer->append(r);
    }
    progress.update(rows);
  }
  nlohmann::json mean_norms = nlohmann::json::object();
  for (auto& w : writers) mean_norms[w.hook] = w.writer->finish().mean_norm;
  progress.finish();
  nlohmann::json summary = {
      {"rows", rows}, {"sequences", corpus.sequences_emitted()}, {"store", root.string()}};
  if (!multi) {
    summary["hook"] = hooks.front();
    summary["d"] = info.hooks.at(hooks.front());
    summary["mean_norm"] = mean_norms[hooks.front()];
  } else {
    summary["hooks"] = hooks;
    summary["mean_norm"] = mean_norms;
  }
  return summary;
}

}  // namespace saelab
