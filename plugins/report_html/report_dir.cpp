#include "report_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "report_figures.hpp"
#include "report_json.hpp"
#include "saelab/core/embedded_file.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/progress.hpp"

namespace saelab {
extern const EmbeddedFile kReportAssets[];
extern const std::size_t kReportAssets_count;
}  // namespace saelab

namespace saelab::report {
namespace fs = std::filesystem;

void write_assets(const fs::path& dir) {
  fs::create_directories(dir / "assets");
  for (std::size_t i = 0; i < kReportAssets_count; ++i) {
    const auto& f = kReportAssets[i];
    const std::string name = f.name;
    const bool page = name.size() > 5 && name.substr(name.size() - 5) == ".html";
    write_file_atomic(page ? dir / name : dir / "assets" / name,
                      std::string_view(reinterpret_cast<const char*>(f.data), f.size));
  }
}

namespace {

// Every token's display string, by id (empty without a source: pages then show "#id").
nlohmann::json vocab_json(const ActivationSource* source) {
  auto out = nlohmann::json::array();
  if (!source) return out;
  for (std::int64_t id = 0; id < source->info().vocab_size; ++id)
    out.push_back(display_json(source->decode({static_cast<std::int32_t>(id)})));
  return out;
}

std::string chunk_name(std::int64_t c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld", static_cast<long long>(c));
  return buf;
}

// data/latents.js and data/features/*.js; returns every latent's firing count.
std::vector<std::int64_t> write_latent_data(const ReportInputs& in, const fs::path& dir) {
  const std::int64_t d = in.features.d_sae(), tokens = in.features.tokens(), cs = in.opts.chunk_size;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(d));
  auto rows = nlohmann::json::array();
  fs::create_directories(dir / "data" / "features");
  Progress bar("report write", d, "latents");
  for (std::int64_t c0 = 0; c0 < d; c0 += cs) {
    nlohmann::json chunk = nlohmann::json::object();
    for (std::int64_t id = c0; id < std::min(d, c0 + cs); ++id) {
      const FeatureStats s = in.features.stats(id);
      counts[static_cast<std::size_t>(id)] = s.count;
      rows.push_back(latent_row(id, s, tokens));
      FeatureExtras x;
      x.neighbours = &in.neighbours[static_cast<std::size_t>(id)];
      if (in.logits.available) x.logits = &in.logits.latents[static_cast<std::size_t>(id)];
      x.unavailable_reason = in.logits.reason;
      chunk[std::to_string(id)] = feature_json(id, s, tokens, x);
    }
    write_file_atomic(dir / "data" / "features" / (chunk_name(c0 / cs) + ".js"),
                      js_call(cat("SAELAB.features(", c0 / cs, ", "), chunk));
    bar.update(std::min(d, c0 + cs));
  }
  bar.finish();
  const nlohmann::json table = {{"columns", {"id", "count", "density", "max", "mean_firing", "top_tokens"}},
                                {"rows", std::move(rows)}};
  write_file_atomic(dir / "data" / "latents.js", js_call("SAELAB.latents(", table));
  return counts;
}

std::vector<Figure> write_figures(const ReportInputs& in, const std::vector<std::int64_t>& counts,
                                  const fs::path& dir) {
  std::vector<Figure> figs{write_density_figure(counts, in.features.tokens(), dir, in.opts.png)};
  if (!in.ctx.run_dir.empty())
    for (auto& f : write_training_figures(in.ctx.run_dir / "metrics.jsonl", dir, in.opts.png))
      figs.push_back(f);
  if (in.opts.png && in.opts.png_latents > 0) {
    std::vector<std::int64_t> ids(counts.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](auto a, auto b) { return counts[a] > counts[b]; });
    ids.resize(std::min<std::size_t>(ids.size(), static_cast<std::size_t>(in.opts.png_latents)));
    for (auto id : ids) write_latent_png(id, in.features.stats(id), dir);
  }
  return figs;
}

nlohmann::json options_json(const HtmlReportOptions& o) {
  const auto& f = o.features;
  return {{"tokens", o.tokens},
          {"top_k", f.top_k},
          {"bands", f.bands},
          {"band_samples", f.band_samples},
          {"histogram_bins", f.histogram_bins},
          {"context_left", f.context_left},
          {"context_right", f.context_right},
          {"neighbours", o.neighbours},
          {"logit_tokens", o.logit_tokens},
          {"seed", f.seed}};
}

nlohmann::json timing_json(const ScanTiming& t) {
  return {{"scan_s", t.scan_s},       {"forward_s", t.forward_s},       {"encode_s", t.encode_s},
          {"collect_s", t.collect_s}, {"neighbours_s", t.neighbours_s}, {"logits_s", t.logits_s}};
}

nlohmann::json summary_json(const ReportInputs& in, const std::vector<std::int64_t>& counts,
                            const std::vector<Figure>& figs) {
  const auto& ctx = in.ctx;
  auto figures = nlohmann::json::array();
  for (const auto& f : figs) figures.push_back({{"title", f.title}, {"file", f.file}});
  const auto dead = std::count(counts.begin(), counts.end(), 0);
  return {{"model_id", ctx.source ? ctx.source->info().model_id : std::string("(stored activations)")},
          {"hook", ctx.hook},
          {"architecture", ctx.sae.architecture()},
          {"d_in", ctx.sae.shape().d_in},
          {"d_sae", ctx.sae.shape().d_sae},
          {"scan", in.scan_description},
          {"tokens", in.features.tokens()},
          {"chunk_size", in.opts.chunk_size},
          {"dead", dead},
          {"options", options_json(in.opts)},
          {"config", ctx.config_text},
          {"eval", ctx.eval},
          {"timing", timing_json(in.timing)},
          {"logits", in.logits.available ? std::string() : in.logits.reason},
          {"figures", figures}};
}

// Replaces `out` by `tmp` with the old report kept until the new one is in place.
void commit(const fs::path& tmp, const fs::path& out) {
  const fs::path old = fs::path(out.string() + ".old");
  fs::remove_all(old);
  if (fs::exists(out)) fs::rename(out, old);
  rename_durable(tmp, out);
  fs::remove_all(old);
}

}  // namespace

void write_report_dir(const ReportInputs& in) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path out = in.ctx.out_dir;
  const fs::path tmp = fs::path(out.string() + ".partial");
  fs::remove_all(tmp);  // what an interrupted run left
  fs::create_directories(tmp / "data");
  write_assets(tmp);
  write_file_atomic(tmp / "data" / "vocab.js", js_call("SAELAB.vocab(", vocab_json(in.ctx.source)));
  const auto counts = write_latent_data(in, tmp);
  const auto figs = write_figures(in, counts, tmp);
  write_file_atomic(tmp / "data" / "summary.js", js_call("SAELAB.summary(", summary_json(in, counts, figs)));
  commit(tmp, out);
  const auto& t = in.timing;
  const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::info("report: ", in.features.d_sae(), " latents over ", in.features.tokens(), " tokens in ",
            (out / "index.html").string());
  char line[256];
  std::snprintf(line, sizeof line,
                "scan %.1f s (model %.1f s, SAE encoder %.1f s, statistics %.1f s), neighbours %.1f s, logit "
                "effects %.1f s, writing %.1f s",
                t.scan_s, t.forward_s, t.encode_s, t.collect_s, t.neighbours_s, t.logits_s, write_s);
  log::info("report timing: ", line);
}

}  // namespace saelab::report
