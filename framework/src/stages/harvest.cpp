// harvest: corpus -> source -> store, resumable at shard (sequence) granularity.
#include <c10/core/InferenceMode.h>
#include <torch/types.h>

#include "saelab/data/corpus.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/core/version.hpp"
#include "stages/stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

std::string hook_list(const SourceInfo& info) {
  std::string s;
  int n = 0;
  for (const auto& [name, d] : info.hooks) {
    if (n++ == 12) {
      s += ", ...";
      break;
    }
    s += (s.empty() ? "" : ", ") + name;
  }
  return s;
}

}  // namespace

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

nlohmann::json run_harvest(StageContext& ctx) {
  const Options& o = ctx.options();
  HarvestSettings h = harvest_settings(o);
  auto source = ctx.source();
  const SourceInfo& info = source->info();
  auto hook_it = info.hooks.find(h.hook);
  if (hook_it == info.hooks.end())
    o.fail("harvest.hook",
           cat("the source '", info.model_id, "' has no hook '", h.hook, "'; available: ", hook_list(info)));
  CorpusConfig cc = corpus_config(o);
  if (info.max_context > 0 && cc.context_size > info.max_context)
    o.fail("corpus.context_size",
           cat(cc.context_size, " is longer than the model's context (", info.max_context, ")"));
  TokenBatches corpus(cc, *source);

  StoreMeta meta;
  meta.model_id = info.model_id;
  meta.config_hash = info.config_hash;
  meta.hook = h.hook;
  meta.d = hook_it->second;
  meta.context_size = cc.context_size;
  meta.prepend_bos = cc.prepend_bos;
  meta.exclude_bos = h.exclude_bos && cc.prepend_bos;
  meta.tokenizer_sha256 = info.tokenizer_sha256;
  meta.corpus_fingerprint = corpus.fingerprint();
  meta.saelab_version = kVersion;

  const fs::path dir = ctx.store_dir();
  bool resume = false;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    if (ctx.overwrite) {
      fs::remove_all(dir);
    } else if (ctx.resume) {
      resume = true;
    } else {
      throw UsageError(cat("activation store '", dir.string(),
                           "' already exists; pass --resume to continue "
                           "harvesting into it or --overwrite to harvest again"));
    }
  }
  auto writer = ctx.store()->open_writer(dir, meta, resume);
  std::int64_t rows = writer->committed_rows();
  corpus.skip(writer->committed_sequences());
  if (resume)
    log::info("harvest: resuming after ", rows, " rows (", writer->committed_sequences(), " sequences)");

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
    auto acts = source->run_with_hooks(seqs.to(ctx.plugin_ctx.device), {h.hook}).at(h.hook);
    ActivationRows r = harvest_rows(acts, seqs, first_seq, filter);
    writer->append(r);
    rows += r.tokens.size(0);
    progress.update(rows);
  }
  NormStats stats = writer->finish();
  progress.finish();
  return {{"rows", rows},          {"sequences", corpus.sequences_emitted()},
          {"store", dir.string()}, {"hook", h.hook},
          {"d", meta.d},           {"mean_norm", stats.mean_norm}};
}

}  // namespace saelab
