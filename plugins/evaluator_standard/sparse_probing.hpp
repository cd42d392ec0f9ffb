#pragma once
// The standard evaluator's sparse probing (method: saelab/eval/probing.hpp) on labels read from the
// corpus's file names.
//
// A task is "name: regex". The regex (ECMAScript) is searched in each document's file name as the
// corpus names it (relative to the directory given); the document's class is the first capture
// group, or the whole match when the pattern has none. Documents it does not match are not in the
// task. For the bundled State of the Union files, YEAR_president_party.txt:
//   party: _(d|r)\.txt$        Democrat against Republican
//   century: ^(\d\d)\d\d_      17, 18, 19, 20: four classes, each against the rest
// Each labelled document gives up to sequences_per_document sequences of the corpus's context size
// (the corpus's BOS rule; evenly spaced through the document; a document shorter than one
// sequence gives one shorter sequence). The model runs to the SAE's hook; latents and activations
// are mean-pooled over each sequence's evaluated positions (BOS and the run's excluded positions
// left out, as in every other metric).
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/core/options.hpp"
#include "saelab/eval/probing.hpp"
#include "saelab/interfaces/evaluator.hpp"

namespace saelab {

struct ProbeTaskSpec {
  std::string name;
  std::string pattern;  // as written
  std::regex regex;
};

struct SparseProbingOptions {
  std::vector<ProbeTaskSpec> tasks;  // none: no probing
  std::int64_t sequences_per_document = 8;
  std::int64_t batch_size = 8;
  bool exclude_bos = true;
  metrics::ProbeOptions probe;
};

void add_sparse_probing_schema(OptionSchema& s);
SparseProbingOptions sparse_probing_options(const Options& o);

// The class `task` gives a file name, or "" when the pattern does not match it.
std::string probe_label(const ProbeTaskSpec& task, const std::string& file);

// eval.json's "sparse_probing" record. Needs ctx.source and ctx.corpus.
nlohmann::json run_sparse_probing(EvalContext& ctx, const SparseProbingOptions& opts);

}  // namespace saelab
