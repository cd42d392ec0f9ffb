// What a run writes besides checkpoints: metrics.jsonl and the final SAE.
#include <fstream>
#include <sstream>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "train/trainer_impl.hpp"

namespace saelab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
void append_line(const fs::path& path, const json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump() << '\n';
  out.flush();
  SAELAB_CHECK(out.good(), Error, "cannot append to ", path.string(), " (disk full or not writable?)");
}
}  // namespace

void Trainer::Impl::append_metrics(const StepMetrics& m) const {
  if (!is_main()) return;
  json j = {{"step", m.step}, {"tokens", m.tokens}};
  for (const auto& [k, v] : m.values) j[k] = v;
  append_line(in.run_dir / "metrics.jsonl", j);
}

void Trainer::Impl::append_metrics_event(const json& event) const {
  if (!is_main()) return;
  append_line(in.run_dir / "metrics.jsonl", event);
}

// A resumed run drops what the interrupted one logged after its checkpoint, so metrics.jsonl
// reads as one uninterrupted run.
void Trainer::Impl::truncate_metrics_after(std::int64_t last_step) const {
  const fs::path path = in.run_dir / "metrics.jsonl";
  if (!is_main() || !fs::exists(path)) return;
  std::istringstream lines(read_file(path, std::uintmax_t(1) << 34, "metrics log"));
  std::string kept, line;
  while (std::getline(lines, line)) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) continue;  // a torn last line from a crash
    if (j.value("step", std::int64_t(0)) <= last_step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

namespace {
SaeDirectory sae_directory(SaeArchitecture& sae, const SaeMeta& meta) {
  const SaeShape shape = sae.shape();
  SaeDirectory out;
  out.cfg = make_sae_cfg(sae.inference_architecture(), shape.d_in, shape.d_sae, meta, sae.extra_config());
  const torch::Dtype dtype = sae_dtype_from_string(meta.dtype, "the SAE's cfg dtype");
  for (const auto& [name, t] : sae.state()) out.weights[name] = t.detach().to(torch::kCPU, dtype);
  return out;
}
}  // namespace

void Trainer::Impl::check_saveable() const {
  validate_sae_directory(sae_directory(*in.sae, in.sae_meta), "the SAE to be saved at the end of training");
}

fs::path Trainer::Impl::save_final_sae() {
  if (!is_main()) return in.run_dir / "sae";  // rank 0 writes it
  if (input_scale != 1.0) in.sae->fold_input_scale(input_scale);
  if (in.target_reader && output_scale != 1.0) in.sae->fold_output_scale(output_scale);
  SaeDirectory out = sae_directory(*in.sae, in.sae_meta);
  out.log10_density = density->log10_density();
  const fs::path dir = in.run_dir / "sae";
  save_sae_directory(dir, out, /*overwrite=*/true);
  return dir;
}

}  // namespace saelab
