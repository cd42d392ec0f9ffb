#include "saelab/config/experiment.hpp"

#include <algorithm>
#include <sstream>

#include "saelab/core/registry.hpp"
#include "saelab/train/trainer.hpp"

namespace saelab {

namespace {
OptionSchema build_schema() {
  OptionSchema s;
  s.string("name", "", "Run name; the default output directory is runs/<name> (default: the file's stem)");
  s.integer("seed", 0, "Seed for every random choice (initialisation, shuffling, sampling)").at_least(0);
  s.choice("device", "auto", {"auto", "cpu", "cuda"}, "Where tensors live; auto picks cuda when available");
  s.integer("threads", -1, "CPU threads for LibTorch; auto uses every core").autoable().at_least(1);
  s.strings("stages", kStageNames,
            "Stages `saelab run` executes, in order (harvest, train, evaluate, report)");

  s.plugin("source", "source", "gpt2", "Model that produces activations (ActivationSource plugin)");

  s.strings("corpus.paths", {"data/corpus/sotu"},
            "Text files or directories (relative to the working directory)");
  s.choice("corpus.format", "auto", {"auto", "text", "jsonl"},
           "How to read corpus files; auto decides by extension");
  s.string("corpus.text_field", "text", "JSONL field that holds each document's text");
  s.integer("corpus.context_size", 128, "Tokens per sequence, BOS included").at_least(2);
  s.boolean("corpus.prepend_bos", true, "Start every sequence with the BOS token (as SAELens does)");
  s.boolean("corpus.allow_special_tokens", false,
            "Encode a literal <|endoftext|> in text as the special token");

  s.string("harvest.hook", "blocks.8.hook_resid_pre", "Hook point to harvest (TransformerLens name)");
  s.strings("harvest.hooks", {},
            "Several hook points captured in one forward pass, each stored in <store_dir>/<hook>; '*' "
            "matches any text without a '.' (blocks.*.hook_resid_post). Replaces harvest.hook");
  s.integer("harvest.tokens", 2'000'000, "Activation rows to harvest (BOS rows excluded if exclude_bos)")
      .at_least(1);
  s.integer("harvest.batch_sequences", 32, "Sequences per forward pass").at_least(1);
  s.boolean("harvest.exclude_bos", true, "Do not store activations at BOS positions (they are outliers)");
  s.integer("harvest.exclude_first_positions", 0,
            "Also leave out the first N positions of every sequence after BOS (attention sinks: "
            "SmolLM2's first position has a residual norm ~150x the median)")
      .at_least(0);
  s.boolean("harvest.exclude_special_tokens", false,
            "Leave out rows whose token is one of the source's special (control) tokens");
  s.string("harvest.store_dir", "", "Store directory; empty means <run>/store");

  s.plugin("store", "store", "hdf5", "Where harvested activations are kept (ActivationStore plugin)");

  s.plugin("train.sae", "sae", "relu_l1", "SAE architecture plugin (d_in comes from the activations)");
  s.plugins("train.losses", "loss", {"mse", "l1"},
            "Loss terms, each {plugin: name, ...}; their sum is minimised");
  s.integer("train.shuffle_buffer_rows", std::int64_t(1) << 19, "Rows mixed in memory when reading the store")
      .at_least(1);
  s.string("train.input_hook", "",
           "Hook whose rows the SAE reads, from a store of several hooks; empty: the store's only hook");
  s.string("train.target_hook", "",
           "Transcoders: the hook the output must match (e.g. blocks.3.hook_mlp_out, harvested with "
           "the input in harvest.hooks); empty: the input itself");
  s.plugins("train.saes", "sae", {},
            "Several SAE configurations trained on one hook from one read of the store, each "
            "{plugin: name, ...} into <run>/saes/<index>-<plugin>/ (a sweep sharing its data reads); "
            "replaces train.sae");
  s.strings("train.hooks", {},
            "Train one SAE per hook (patterns as in harvest.hooks) from one store, each in "
            "<run>/saes/<hook>/; replaces train.input_hook");
  s.add_section("train", train_schema());
  s.plugins("train.callbacks", "callback", {},
            "Trainer callbacks (metrics sinks, early stopping), each {plugin: name, ...}");

  s.choice("distributed.backend", "auto", {"auto", "gloo", "nccl"},
           "Collectives of a data-parallel run (launched by torchrun or with RANK/WORLD_SIZE set): "
           "auto is nccl for a CUDA device, else gloo");
  s.real("distributed.timeout_s", 600,
         "A collective that gets no answer for this long fails the run, naming the lost rank")
      .at_least(1);
  s.integer("distributed.check_every_steps", 100,
            "Compare a checksum of the SAE's parameters across ranks every N steps (0: never)")
      .at_least(0);
  s.real("distributed.bucket_mb", 25, "Gradient all-reduce bucket size, MiB (DDP's default)").at_least(0.001);
  s.boolean("distributed.overlap", true,
            "Start each bucket's all-reduce as soon as backward has produced its gradients");

  s.plugin("evaluate.evaluator", "evaluator", "standard", "Evaluator plugin that writes eval.json");
  s.integer("evaluate.skip_sequences", -1,
            "Corpus sequences to skip before evaluating; auto skips those harvested")
      .autoable()
      .at_least(0);
  s.plugin("report.reporter", "reporter", "html", "Reporter plugin that writes report/");
  s.integer("report.skip_sequences", -1,
            "Corpus sequences to skip before scanning; auto skips those harvested")
      .autoable()
      .at_least(0);
  return s;
}
}  // namespace

const OptionSchema& experiment_schema() {
  static const OptionSchema schema = build_schema();
  return schema;
}

RunSettings run_settings(const Options& o) {
  RunSettings r;
  r.name = o.string("name");
  r.seed = static_cast<std::uint64_t>(o.integer("seed"));
  r.device = o.string("device");
  r.threads = o.is_auto("threads") ? -1 : o.integer("threads");
  r.stages = o.strings("stages");
  r.distributed.backend = o.string("distributed.backend");
  r.distributed.timeout_s = o.real("distributed.timeout_s");
  r.distributed.check_every_steps = o.integer("distributed.check_every_steps");
  r.distributed.bucket_bytes = static_cast<std::int64_t>(o.real("distributed.bucket_mb") * (1 << 20));
  r.distributed.overlap = o.boolean("distributed.overlap");
  for (const auto& st : r.stages) {
    if (std::find(kStageNames.begin(), kStageNames.end(), st) == kStageNames.end())
      o.fail("stages", cat("unknown stage '", st, "'; allowed: harvest, train, evaluate, report",
                           closest_name(st, kStageNames)));
  }
  return r;
}

CorpusConfig corpus_config(const Options& o) {
  CorpusConfig c;
  for (const auto& p : o.strings("corpus.paths")) c.paths.emplace_back(p);
  if (c.paths.empty()) o.fail("corpus.paths", "needs at least one file or directory");
  c.format = o.string("corpus.format");
  c.text_field = o.string("corpus.text_field");
  c.context_size = o.integer("corpus.context_size");
  c.prepend_bos = o.boolean("corpus.prepend_bos");
  c.allow_special_tokens = o.boolean("corpus.allow_special_tokens");
  return c;
}

HarvestSettings harvest_settings(const Options& o) {
  HarvestSettings h;
  h.hook = o.string("harvest.hook");
  h.tokens = o.integer("harvest.tokens");
  h.batch_sequences = o.integer("harvest.batch_sequences");
  h.exclude_bos = o.boolean("harvest.exclude_bos");
  h.exclude_first_positions = o.integer("harvest.exclude_first_positions");
  h.exclude_special_tokens = o.boolean("harvest.exclude_special_tokens");
  h.store_dir = o.string("harvest.store_dir");
  return h;
}

namespace {
std::string md_escape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else
      out.push_back(c);
  }
  return out;
}

void schema_table(std::ostringstream& os, const OptionSchema& schema, const std::string& prefix) {
  os << "| key | type | default | allowed | description |\n|---|---|---|---|---|\n";
  for (const auto& spec : schema.specs()) {
    os << "| `" << prefix << spec.key << "` | " << option_type_name(spec.type) << " | `"
       << md_escape(spec.default_str()) << "` | " << md_escape(spec.range_str()) << " | "
       << md_escape(spec.description) << " |\n";
  }
}
}  // namespace

std::string config_reference_markdown(const Registry& registry) {
  std::ostringstream os;
  os << "# Configuration reference\n\n"
     << "Generated by `saelab config-docs` from the option schemas in the code; a test keeps this file\n"
     << "in sync. Every option has a default. Plugin slots take `{plugin: <name>, <its options>}`.\n\n"
     << "## Experiment\n\n";
  schema_table(os, experiment_schema(), "");
  std::vector<const FactoryInfo*> all = registry.all();
  std::stable_sort(all.begin(), all.end(), [](auto* a, auto* b) {
    return a->kind != b->kind ? a->kind < b->kind : a->name < b->name;
  });
  os << "\n## Plugins\n";
  for (const FactoryInfo* f : all) {
    os << "\n### " << f->kind << " `" << f->name << "`\n\n"
       << f->description << " (library `" << f->library.plugin << "` " << f->library.version << ")\n\n";
    if (f->schema.specs().empty())
      os << "No options.\n";
    else
      schema_table(os, f->schema, "");
  }
  return os.str();
}

}  // namespace saelab
