// harvest: corpus -> source -> store, resumable at shard (sequence) granularity.
#include <algorithm>
#include <limits>

#include <c10/core/InferenceMode.h>
#include <torch/types.h>

#include "saelab/data/corpus.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/core/version.hpp"
#include "saelab/dist/process_group.hpp"
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

// The rows of sequences in [lo, hi) (they come in sequence order).
ActivationRows rows_in(const ActivationRows& r, std::int64_t lo, std::int64_t hi) {
  const auto keep = ((r.sequence >= lo) & (r.sequence < hi)).nonzero().flatten();
  if (keep.numel() == r.sequence.numel()) return r;
  return {r.activations.index_select(0, keep), r.tokens.index_select(0, keep),
          r.sequence.index_select(0, keep), r.position.index_select(0, keep)};
}

// What one process harvests: the sequences from `first` on, until `end` or until `target_rows`
// rows are counted (`rows` of them before `first`), whichever comes first.
struct HarvestSpan {
  std::int64_t first = 0;
  std::int64_t end = std::numeric_limits<std::int64_t>::max();
  std::int64_t rows = 0;
  std::int64_t target_rows = std::numeric_limits<std::int64_t>::max();
};

// Forward batches are always the batch_sequences-aligned blocks [bB, (b + 1)B) of the corpus, so
// every activation is computed in the same batch however the harvest was split, interrupted or
// resumed (the GEMMs' blocking depends on the batch); rows outside the span are dropped. The last
// sequence stored is the first at which the counted rows reach target_rows. Returns the span's
// rows and where it ended.
HarvestSpan harvest_span(StageContext& ctx, TokenBatches& corpus, std::vector<HookWriter>& writers,
                         HarvestSpan span, const RowFilter& filter, std::int64_t batch, Progress& progress) {
  auto source = ctx.source();
  std::vector<std::string> hooks;
  for (const auto& w : writers) hooks.push_back(w.hook);
  corpus.skip(span.first / batch * batch);
  c10::InferenceMode guard;
  while (span.rows < span.target_rows && span.first < span.end) {
    const std::int64_t batch_first = corpus.sequences_emitted();
    torch::Tensor seqs = corpus.next(batch);
    if (seqs.size(0) == 0) {
      if (span.target_rows != std::numeric_limits<std::int64_t>::max())
        log::warn("harvest: the corpus ran out after ", span.rows, " rows; harvest.tokens asked for ",
                  span.target_rows);
      break;
    }
    auto acts = source->run_with_hooks(seqs.to(ctx.plugin_ctx.device), hooks);
    std::int64_t cut = std::min(span.end, batch_first + seqs.size(0));
    const ActivationRows counted =
        rows_in(harvest_rows(acts.at(hooks.front()), seqs, batch_first, filter), span.first, cut);
    const std::int64_t n = counted.tokens.size(0);
    if (span.rows + n >= span.target_rows && n > 0)
      cut = counted.sequence[span.target_rows - span.rows - 1].item<std::int64_t>() + 1;
    for (auto& w : writers) {
      ActivationRows r =
          rows_in(&w == &writers.front() ? counted : harvest_rows(acts.at(w.hook), seqs, batch_first, filter),
                  std::max(span.first, w.skip_below), cut);
      if (r.tokens.size(0) > 0) w.writer->append(r);
    }
    span.rows += (counted.sequence < cut).sum().item<std::int64_t>();
    span.first = cut;
    progress.update(span.rows);
  }
  return span;
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

namespace {

// What every harvest of this experiment shares, single-process or data-parallel.
struct HarvestSetup {
  HarvestSettings h;
  std::vector<std::string> hooks;
  CorpusConfig cc;
  std::unique_ptr<TokenBatches> corpus;
  StoreMeta meta;
  RowFilter filter;
  fs::path root;
  bool multi = false;
};

HarvestSetup harvest_setup(StageContext& ctx) {
  const Options& o = ctx.options();
  HarvestSetup s;
  s.h = harvest_settings(o);
  auto source = ctx.source();
  const SourceInfo& info = source->info();
  s.hooks = harvest_hooks(o, info);
  s.cc = corpus_config(o);
  if (info.max_context > 0 && s.cc.context_size > info.max_context)
    o.fail("corpus.context_size",
           cat(s.cc.context_size, " is longer than the model's context (", info.max_context, ")"));
  s.corpus = std::make_unique<TokenBatches>(s.cc, *source);
  s.meta.model_id = info.model_id;
  s.meta.config_hash = info.config_hash;
  s.meta.context_size = s.cc.context_size;
  s.meta.prepend_bos = s.cc.prepend_bos;
  s.meta.exclude_bos = s.h.exclude_bos && s.cc.prepend_bos;
  s.meta.tokenizer_sha256 = info.tokenizer_sha256;
  s.meta.corpus_fingerprint = s.corpus->fingerprint();
  s.meta.saelab_version = kVersion;
  s.filter = row_filter(o, info);
  s.root = ctx.store_dir();
  s.multi = multi_hook_harvest(o);
  return s;
}

nlohmann::json harvest_summary(StageContext& ctx, const HarvestSetup& s, std::int64_t rows,
                               std::int64_t sequences, const nlohmann::json& mean_norms) {
  nlohmann::json summary = {{"rows", rows}, {"sequences", sequences}, {"store", s.root.string()}};
  if (!s.multi) {
    summary["hook"] = s.hooks.front();
    summary["d"] = ctx.source()->info().hooks.at(s.hooks.front());
    summary["mean_norm"] = mean_norms[s.hooks.front()];
  } else {
    summary["hooks"] = s.hooks;
    summary["mean_norm"] = mean_norms;
  }
  return summary;
}

// A store is resumed the way it was harvested: alone, or by ranks (its parts/ directories).
void check_resumed_alike(const HarvestSetup& s, bool by_ranks) {
  const fs::path dir = s.multi ? s.root / s.hooks.front() : s.root;
  std::error_code ec;
  const bool parts = fs::is_directory(dir / "parts", ec);
  const bool alone = fs::exists(dir / "manifest.json", ec) && !parts;
  SAELAB_CHECK(!(by_ranks ? alone : parts), UsageError, "cannot resume the harvest in ", s.root.string(),
               by_ranks ? " on several ranks: one process harvested it. Resume it in one process"
                        : " in one process: several ranks harvested it (its parts/). Relaunch them",
               ", or harvest again (--overwrite)");
}

nlohmann::json harvest_alone(StageContext& ctx, HarvestSetup& s) {
  const bool resume = prepare_store_dir(ctx, s.root);
  if (resume) check_resumed_alike(s, false);
  std::vector<HookWriter> writers = open_writers(ctx, s.hooks, s.meta, s.multi, resume);
  std::int64_t start = writers.front().skip_below;  // the first sequence some store still lacks
  for (const auto& w : writers) start = std::min(start, w.skip_below);
  // Every hook stores the same positions, so the rows before `start` are those of the store that
  // stops there; harvest.tokens counts rows of one hook.
  std::int64_t rows = 0;
  for (const auto& w : writers)
    if (w.skip_below == start) rows = w.writer->committed_rows();
  if (resume)
    log::info("harvest: resuming at sequence ", start, " (", rows, " rows of ", s.hooks.front(), " stored)");
  Progress progress("harvest", s.h.tokens, "tok");
  progress.update(rows);
  HarvestSpan span;
  span.first = start;
  span.rows = rows;
  span.target_rows = s.h.tokens;
  span = harvest_span(ctx, *s.corpus, writers, span, s.filter, s.h.batch_sequences, progress);
  nlohmann::json mean_norms = nlohmann::json::object();
  for (auto& w : writers) mean_norms[w.hook] = w.writer->finish().mean_norm;
  progress.finish();
  return harvest_summary(ctx, s, span.rows, span.first, mean_norms);
}

// The sequences a harvest of `tokens` rows stores are [0, S), S the first count at which the row
// filter keeps `tokens` rows (or the whole corpus). Decided from the tokens alone, without the
// model, so every rank finds the same S before harvesting its part.
std::int64_t sequences_needed(HarvestSetup& s, ActivationSource& source) {
  TokenBatches corpus(s.cc, source);
  std::int64_t rows = 0;
  for (;;) {
    const std::int64_t first = corpus.sequences_emitted();
    const torch::Tensor seqs = corpus.next(1024);
    if (seqs.size(0) == 0) {
      log::warn("harvest: the corpus has ", rows, " rows; harvest.tokens asked for ", s.h.tokens);
      return first;
    }
    const torch::Tensor upto = rows_to_keep(seqs, s.filter).sum(1).cumsum(0) + rows;  // [n] int64
    if (upto[-1].item<std::int64_t>() >= s.h.tokens)
      return first + (upto >= s.h.tokens).nonzero()[0][0].item<std::int64_t>() + 1;
    rows = upto[-1].item<std::int64_t>();
  }
}

// Rank `rank`'s part of sequences [0, S): whole forward batches, split evenly.
struct RankPart {
  std::int64_t first = 0, end = 0;
  std::string name;  // "rank-1-of-2", its directory under <hook store>/parts/
};

RankPart rank_part(std::int64_t sequences, std::int64_t batch, int rank, int world) {
  const std::int64_t batches = (sequences + batch - 1) / batch;
  return {batches * rank / world * batch, std::min(sequences, batches * (rank + 1) / world * batch),
          cat("rank-", rank, "-of-", world)};
}

// A store being resumed must have been split for this many ranks.
void check_part_names(const fs::path& hook_dir, int world) {
  const fs::path parts = hook_dir / "parts";
  std::error_code ec;
  if (!fs::is_directory(parts, ec)) return;
  const std::string suffix = cat("-of-", world);
  for (const auto& e : fs::directory_iterator(parts)) {
    const std::string name = e.path().filename().string();
    SAELAB_CHECK(
        name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0,
        UsageError, "cannot resume the data-parallel harvest in ", hook_dir.string(), " on ", world,
        " ranks: its part ", name,
        " was written by a run of another world size. Relaunch with that "
        "many ranks, or harvest again (--overwrite)");
  }
}

nlohmann::json harvest_on_ranks(StageContext& ctx, HarvestSetup& s, dist::ProcessGroup& g) {
  if (g.is_main() && prepare_store_dir(ctx, s.root)) check_resumed_alike(s, true);
  g.barrier("preparing the store directory (rank 0 refused; see its error)");
  const std::int64_t sequences = sequences_needed(s, *ctx.source());
  const RankPart part = rank_part(sequences, s.h.batch_sequences, g.rank(), g.size());
  std::vector<fs::path> hook_dirs;
  std::vector<HookWriter> writers;
  bool complete = true;
  for (const auto& hook : s.hooks) {
    hook_dirs.push_back(s.multi ? s.root / hook : s.root);
    check_part_names(hook_dirs.back(), g.size());
    StoreMeta m = s.meta;
    m.hook = hook;
    m.d = ctx.source()->info().hooks.at(hook);
    HookWriter w{hook, hook_dirs.back() / "parts" / part.name, nullptr, 0};
    const bool exists = fs::exists(w.dir / "manifest.json");
    complete = complete && exists && ctx.store()->stats(w.dir).has_value();
    w.writer = ctx.store()->open_writer(w.dir, m, exists);
    w.skip_below = std::max(part.first, w.writer->committed_sequences());
    writers.push_back(std::move(w));
  }
  log::info("harvest: sequences [", part.first, ", ", part.end, ") of ", sequences, " on rank ", g.rank(),
            complete ? " (already complete)" : "");
  if (!complete) {
    HarvestSpan span;
    span.first = writers.front().skip_below;
    for (const auto& w : writers) span.first = std::min(span.first, w.skip_below);
    span.end = part.end;
    Progress progress("harvest", s.h.tokens / g.size(), "tok");
    harvest_span(ctx, *s.corpus, writers, span, s.filter, s.h.batch_sequences, progress);
    for (auto& w : writers) w.writer->finish();
    progress.finish();
  }
  writers.clear();
  g.barrier("the harvest's parts (a rank that did not arrive is still harvesting or was lost)");
  if (g.is_main())
    for (const auto& dir : hook_dirs) {
      std::vector<fs::path> parts;
      for (int r = 0; r < g.size(); ++r) parts.push_back(dir / "parts" / rank_part(0, 1, r, g.size()).name);
      ctx.store()->join_parts(dir, parts);
    }
  g.barrier("joining the store (rank 0 failed to; see its error)");
  nlohmann::json mean_norms = nlohmann::json::object();
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < s.hooks.size(); ++i) {
    const NormStats st = ctx.store()->stats(hook_dirs[i]).value();
    mean_norms[s.hooks[i]] = st.mean_norm;
    rows = st.rows;
  }
  return harvest_summary(ctx, s, rows, sequences, mean_norms);
}

}  // namespace

nlohmann::json run_harvest(StageContext& ctx) {
  HarvestSetup s = harvest_setup(ctx);
  if (ctx.plugin_ctx.group) return harvest_on_ranks(ctx, s, *ctx.plugin_ctx.group);
  return harvest_alone(ctx, s);
}

}  // namespace saelab
