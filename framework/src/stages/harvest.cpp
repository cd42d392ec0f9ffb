// harvest: corpus -> source -> store, resumable at shard (sequence) granularity.
#include <c10/core/InferenceMode.h>
#include <torch/types.h>

#include "saelab/data/corpus.hpp"
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

// One batch of sequences [B, T] -> the rows to store, with provenance.
ActivationRows make_rows(const torch::Tensor& acts, const torch::Tensor& seqs, std::int64_t first_sequence,
                         std::int64_t first_position) {
  const std::int64_t B = seqs.size(0), T = seqs.size(1), d = acts.size(2);
  using torch::indexing::Slice;
  ActivationRows r;
  r.activations = acts.index({Slice(), Slice(first_position)})
                      .reshape({-1, d})
                      .to(torch::kCPU, torch::kFloat32)
                      .contiguous();
  r.tokens =
      seqs.index({Slice(), Slice(first_position)}).reshape({-1}).to(torch::kCPU, torch::kInt32).contiguous();
  const std::int64_t kept = T - first_position;
  r.sequence = (torch::arange(B, torch::kInt64) + first_sequence)
                   .unsqueeze(1)
                   .expand({B, kept})
                   .reshape({-1})
                   .contiguous();
  r.position = torch::arange(first_position, T, torch::kInt32)
                   .unsqueeze(0)
                   .expand({B, kept})
                   .reshape({-1})
                   .contiguous();
  return r;
}

}  // namespace

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

  const std::int64_t first_pos = meta.exclude_bos ? 1 : 0;
  const std::int64_t rows_per_seq = cc.context_size - first_pos;
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
    ActivationRows r = make_rows(acts, seqs, first_seq, first_pos);
    writer->append(r);
    rows += r.tokens.size(0);
    progress.update(rows);
  }
  NormStats stats = writer->finish();
  progress.finish();
  return {{"rows", rows},
          {"store", dir.string()},
          {"hook", h.hook},
          {"d", meta.d},
          {"mean_norm", stats.mean_norm}};
}

}  // namespace saelab
