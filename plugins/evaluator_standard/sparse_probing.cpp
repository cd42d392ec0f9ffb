#include "sparse_probing.hpp"

#include <algorithm>
#include <map>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/numbers.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/data/harvest_rows.hpp"
#include "saelab/interfaces/eval_cache.hpp"
#include "saelab/sae/apply.hpp"
#include "standard_evaluator.hpp"

namespace saelab {

void add_sparse_probing_schema(OptionSchema& s) {
  s.strings("probe_tasks", {},
            "Sparse probing tasks, each \"name: regex\": the regex's first group (or match) in a "
            "document's file name is its class (empty: no probing)");
  s.integer("probe_sequences_per_document", 8, "Sequences taken from each labelled document").at_least(1);
  s.strings("probe_k", {"1", "2", "5", "10", "20"}, "Numbers of latents (and of model dimensions) probed");
  s.real("probe_test_fraction", 0.2, "Share of each class's documents held out for testing")
      .above(0)
      .at_most(0.5);
  s.integer("probe_seed", 0, "Seed of the document split and the class balancing").at_least(0);
}

namespace {

ProbeTaskSpec parse_task(const Options& o, const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string allowed = "; write \"name: regex\", for example \"party: _(d|r)\\.txt$\"";
  if (colon == std::string::npos || colon == 0)
    o.fail("probe_tasks", cat("task \"", spec, "\" has no name", allowed));
  ProbeTaskSpec t;
  t.name = spec.substr(0, colon);
  const auto first = spec.find_first_not_of(' ', colon + 1);
  t.pattern = first == std::string::npos ? std::string() : spec.substr(first);
  if (t.pattern.empty()) o.fail("probe_tasks", cat("task '", t.name, "' has no pattern", allowed));
  try {
    t.regex = std::regex(t.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    o.fail("probe_tasks", cat("task '", t.name, "': the pattern \"", t.pattern,
                              "\" is not a valid ECMAScript regular expression (", e.what(), ")"));
  }
  return t;
}

}  // namespace

SparseProbingOptions sparse_probing_options(const Options& o) {
  SparseProbingOptions r;
  for (const auto& spec : o.strings("probe_tasks")) {
    r.tasks.push_back(parse_task(o, spec));
    for (std::size_t i = 0; i + 1 < r.tasks.size(); ++i)
      if (r.tasks[i].name == r.tasks.back().name)
        o.fail("probe_tasks", cat("task '", r.tasks.back().name, "' is named twice"));
  }
  r.probe.k.clear();
  for (const auto& k : o.strings("probe_k")) {
    const auto v = parse_integer(k);
    if (!v || *v < 1) o.fail("probe_k", cat("\"", k, "\" is not a whole number ≥ 1"));
    r.probe.k.push_back(*v);
  }
  if (r.probe.k.empty()) o.fail("probe_k", "give at least one number of latents");
  std::sort(r.probe.k.begin(), r.probe.k.end());
  r.probe.k.erase(std::unique(r.probe.k.begin(), r.probe.k.end()), r.probe.k.end());
  r.sequences_per_document = o.integer("probe_sequences_per_document");
  r.probe.test_fraction = o.real("probe_test_fraction");
  r.probe.seed = static_cast<std::uint64_t>(o.integer("probe_seed"));
  r.batch_size = o.integer("batch_size");
  r.exclude_bos = o.boolean("exclude_bos");
  return r;
}

std::string probe_label(const ProbeTaskSpec& task, const std::string& file) {
  std::smatch m;
  if (!std::regex_search(file, m, task.regex)) return {};
  return m.size() > 1 && m[1].matched ? m[1].str() : m[0].str();
}

namespace {

struct ProbeSequence {
  std::vector<std::int64_t> tokens;
  std::int64_t document = 0;
};

struct ProbeCorpus {
  std::vector<ProbeSequence> sequences;
  std::vector<std::vector<std::string>> labels;  // [document][task]
};

// Up to `per_document` sequences spread evenly through the document's tokens.
void add_sequences(const std::vector<std::int32_t>& toks, const CorpusConfig& corpus, std::int32_t bos,
                   std::int64_t per_document, std::int64_t document, std::vector<ProbeSequence>& out) {
  const std::int64_t body = corpus.context_size - (corpus.prepend_bos ? 1 : 0);
  const auto n = static_cast<std::int64_t>(toks.size());
  const std::int64_t chunks = std::max<std::int64_t>(n / body, n > 0 ? 1 : 0);
  const std::int64_t take = std::min(per_document, chunks);
  for (std::int64_t i = 0; i < take; ++i) {
    const std::int64_t start = (i * chunks / take) * body;
    ProbeSequence s{{}, document};
    if (corpus.prepend_bos) s.tokens.push_back(bos);
    s.tokens.insert(s.tokens.end(), toks.begin() + start, toks.begin() + std::min(n, start + body));
    out.push_back(std::move(s));
  }
}

ProbeCorpus read_probe_corpus(const EvalContext& ctx, const SparseProbingOptions& opts) {
  ProbeCorpus pc;
  CorpusDocuments docs(*ctx.corpus);
  CorpusDocument d;
  while (docs.next(d)) {
    std::vector<std::string> labels;
    bool any = false;
    for (const auto& t : opts.tasks) {
      labels.push_back(probe_label(t, d.file));
      any = any || !labels.back().empty();
    }
    if (!any) continue;
    const auto toks = document_tokens(d.text, *ctx.source, ctx.corpus->allow_special_tokens);
    const auto before = pc.sequences.size();
    add_sequences(toks, *ctx.corpus, ctx.source->info().bos_token, opts.sequences_per_document,
                  std::int64_t(pc.labels.size()), pc.sequences);
    if (pc.sequences.size() > before) pc.labels.push_back(std::move(labels));
  }
  return pc;
}

struct Pooled {
  torch::Tensor sae, model;            // [n, d_sae], [n, d_in] float32 CPU
  std::vector<std::int64_t> document;  // [n]
};

// The hook's activations, from the sweep's cache when an earlier run of it read these tokens.
torch::Tensor hook_activations(EvalContext& ctx, const torch::Tensor& tokens) {
  const std::string key =
      ctx.cache ? eval_cache_key("probe-hook", ctx.source->info(), ctx.hook, {tokens}) : "";
  return cached(ctx.cache, key,
                [&] {
                  auto acts = ctx.source->run_with_hooks(tokens.to(ctx.source->device()), {ctx.hook});
                  const auto it = acts.find(ctx.hook);
                  SAELAB_CHECK(it != acts.end(), Error,
                               "sparse probing: the model returned no activations for hook '", ctx.hook, "'");
                  return EvalCache::Entry{{"act", it->second}};
                })
      .at("act");
}

// Mean over each sequence's evaluated positions; sequences with none are dropped.
void pool_batch(EvalContext& ctx, const std::vector<const ProbeSequence*>& batch,
                const SparseProbingOptions& opts, std::vector<torch::Tensor>& sae,
                std::vector<torch::Tensor>& model, std::vector<std::int64_t>& doc) {
  const auto b = std::int64_t(batch.size()), s = std::int64_t(batch.front()->tokens.size());
  auto tokens = torch::empty({b, s}, torch::kInt64);
  for (std::int64_t i = 0; i < b; ++i)
    std::copy(batch[i]->tokens.begin(), batch[i]->tokens.end(), tokens[i].data_ptr<std::int64_t>());
  const auto mask = evaluated_positions(tokens, ctx.source->info(), opts.exclude_bos, ctx.rows);  // [b, s]
  torch::Tensor act = hook_activations(ctx, tokens);                                              // [b, s, d]
  SAELAB_CHECK(act.dim() == 3 && act.size(0) == b && act.size(1) == s, Error,
               "sparse probing: the model did not return hook '", ctx.hook, "' as [", b, ", ", s,
               ", d] for a batch of ", b, " sequences");
  const auto x = act.reshape({b * s, -1});
  const auto latents = apply_sae(ctx.sae, x, ctx.input_scale).latents.to(torch::kCPU).view({b, s, -1});
  const auto m = mask.to(torch::kFloat32).unsqueeze(-1);  // [b, s, 1]
  const auto count = m.sum(1);                            // [b, 1]
  const auto keep = count.squeeze(1).gt(0).nonzero().squeeze(1);
  sae.push_back(((latents * m).sum(1) / count.clamp_min(1)).index_select(0, keep));
  model.push_back(((x.to(torch::kCPU, torch::kFloat32).view({b, s, -1}) * m).sum(1) / count.clamp_min(1))
                      .index_select(0, keep));
  for (std::int64_t i = 0; i < keep.size(0); ++i)
    doc.push_back(batch[keep[i].item<std::int64_t>()]->document);
}

Pooled pool(EvalContext& ctx, const ProbeCorpus& pc, const SparseProbingOptions& opts) {
  // Batches of equal length: only a document shorter than one sequence makes a shorter one.
  std::map<std::size_t, std::vector<const ProbeSequence*>> by_length;
  for (const auto& s : pc.sequences) by_length[s.tokens.size()].push_back(&s);
  std::vector<torch::Tensor> sae, model;
  Pooled out;
  Progress progress("probe", std::int64_t(pc.sequences.size()), "seq");
  std::int64_t done = 0;
  for (const auto& [len, seqs] : by_length) {
    for (std::size_t i = 0; i < seqs.size(); i += std::size_t(opts.batch_size)) {
      std::vector<const ProbeSequence*> batch(
          seqs.begin() + std::ptrdiff_t(i),
          seqs.begin() + std::ptrdiff_t(std::min(seqs.size(), i + std::size_t(opts.batch_size))));
      pool_batch(ctx, batch, opts, sae, model, out.document);
      done += std::int64_t(batch.size());
      progress.update(done);
    }
  }
  progress.finish();
  out.sae = sae.empty() ? torch::empty({0, ctx.sae.shape().d_sae}) : torch::cat(sae);
  out.model = model.empty() ? torch::empty({0, ctx.sae.shape().d_in}) : torch::cat(model);
  return out;
}

metrics::ProbeRows task_rows(const Pooled& p, const ProbeCorpus& pc, std::size_t task) {
  std::vector<std::int64_t> idx;
  metrics::ProbeRows r;
  for (std::size_t i = 0; i < p.document.size(); ++i) {
    const std::string& label = pc.labels[std::size_t(p.document[i])][task];
    if (label.empty()) continue;
    idx.push_back(std::int64_t(i));
    r.group.push_back(p.document[i]);
    r.label.push_back(label);
  }
  const auto rows = torch::tensor(idx, torch::kInt64);
  r.sae = p.sae.index_select(0, rows);
  r.model = p.model.index_select(0, rows);
  return r;
}

}  // namespace

nlohmann::json run_sparse_probing(EvalContext& ctx, const SparseProbingOptions& opts) {
  SAELAB_CHECK(ctx.source && ctx.corpus, Error,
               "sparse probing needs the model and the corpus; evaluate with a source and corpus.paths");
  torch::NoGradGuard no_grad;
  const ProbeCorpus pc = read_probe_corpus(ctx, opts);
  const Pooled pooled = pool(ctx, pc, opts);
  nlohmann::json tasks = nlohmann::json::object();
  std::vector<metrics::ProbeTask> done;
  for (std::size_t t = 0; t < opts.tasks.size(); ++t) {
    const auto& spec = opts.tasks[t];
    try {
      done.push_back(metrics::sparse_probe(spec.name, task_rows(pooled, pc, t), opts.probe));
      tasks[spec.name] = metrics::probe_json(done.back());
    } catch (const Error& e) {
      // One task's misfit pattern must not cost the rest of eval.json.
      log::warn("evaluator standard: ", e.what(), " (task skipped)");
      tasks[spec.name] = {{"error", e.what()}};
    }
    tasks[spec.name]["pattern"] = spec.pattern;
  }
  return {{"method",
           "SAEBench sparse probing: mean-pooled sequences, top-k latents by class-mean difference, "
           "L2 logistic regression (C = 1), split by document, classes balanced"},
          {"documents", pc.labels.size()},
          {"sequences", pooled.document.size()},
          {"sequences_per_document", opts.sequences_per_document},
          {"test_fraction", opts.probe.test_fraction},
          {"seed", opts.probe.seed},
          {"k", opts.probe.k},
          {"tasks", std::move(tasks)},
          {"mean", metrics::probe_summary_json(done, opts.probe)}};
}

}  // namespace saelab
