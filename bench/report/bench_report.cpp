// The report for every latent at scale: Reporter "html" over synthetic stored activations (rows
// with provenance, generated in corpus order, so no forward pass), with a 768 -> d_sae ReLU SAE
// whose encoder bias makes about 2% of latents fire per token, as trained SAEs do.
// Each setting runs in a child process (this executable re-run with --child), so its peak RSS is
// its own; all settings and the machine's sgemm rate are measured in this one run:
//   A  4,096 latents over 1M tokens    (target: under 2 minutes on 2 cores; no model time here)
//   B  24,576 latents over 1M tokens
//   C  4,096 latents over 4M tokens    (peak RSS must equal A's: memory is bounded by the options)
//   bench_report [--threads N] [--scale F]   F scales every token count (e.g. 0.1 for a quick run)
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "bench_util.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/registry.hpp"
#include "saelab/interfaces/reporter.hpp"

extern char** environ;

using namespace saelab;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kD = 768, kSeqLen = 128;

// Rows of sequences of kSeqLen positions (position 0, BOS, not stored), in order, generated.
class SyntheticRows : public ActivationReader {
 public:
  explicit SyntheticRows(std::int64_t rows) : n_(rows) {}
  torch::Tensor next_batch() override { return next_rows().activations; }
  ActivationRows next_rows() override {
    const std::int64_t m = std::min<std::int64_t>(1024, n_ - at_);
    const auto t0 = std::chrono::steady_clock::now();
    const auto idx = torch::arange(at_, at_ + m, torch::kInt64);
    ActivationRows r;
    r.activations = torch::randn({m, kD});
    r.sequence = idx.div(kSeqLen - 1, "floor");
    r.position = (idx.remainder(kSeqLen - 1) + 1).to(torch::kInt32);
    r.tokens = (idx * static_cast<std::int64_t>(2654435761)).remainder(50257).to(torch::kInt32);
    at_ += m;
    gen_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }
  std::int64_t rows_per_epoch() const override { return n_; }
  std::int64_t d() const override { return kD; }
  nlohmann::json cursor() const override { return {{"at", at_}}; }
  void restore(const nlohmann::json& c) override { at_ = c.at("at").get<std::int64_t>(); }
  double gen_s = 0;

 private:
  std::int64_t n_, at_ = 0;
};

Options options(const Registry& reg, const char* kind, const char* name,
                const std::map<std::string, OptionValue>& v) {
  return bench::plugin_options(reg, kind, name, v, "bench_report");
}

// One setting, in this process: prints one JSON line.
int child(std::int64_t d_sae, std::int64_t tokens, int threads) {
  at::set_num_threads(threads);
  Registry reg;
  for (const char* p : {"sae_relu_l1", "report_html"})
    load_plugin_library(reg, cat(SAELAB_PLUGIN_DIR, "/libsaelab_plugin_", p, ".so"));
  PluginContext pc;
  pc.seed = 1;
  auto sae = reg.create<SaeArchitecture>(
      "relu_l1", options(reg, "sae", "relu_l1", {{"d_in", kD}, {"d_sae", d_sae}}), pc);
  {  // b_enc = -2.05 |W_enc[:, j]|: x ~ N(0, I) fires latent j with probability ~2%.
    torch::NoGradGuard ng;
    auto state = sae->state();
    state["b_enc"] = -2.05 * state["W_enc"].norm(2, 0);
    sae->load_state(state);
  }
  SyntheticRows rows(tokens);
  const fs::path out = fs::temp_directory_path() / cat("saelab-bench-report-", getpid());
  auto reporter = reg.create<Reporter>(
      "html", options(reg, "reporter", "html", {{"input", std::string("store")}, {"tokens", tokens}}), pc);
  ReportContext ctx{*sae, nullptr, "blocks.8.hook_resid_pre", nullptr, &rows, nlohmann::json(), out, 1.0, {},
                    {},   ""};
  const auto t0 = std::chrono::steady_clock::now();
  reporter->write(ctx);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uintmax_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(out))
    if (e.is_regular_file()) bytes += e.file_size();
  const std::uintmax_t index =
      fs::file_size(out / "index.html") + fs::file_size(out / "data" / "latents.js") +
      fs::file_size(out / "data" / "summary.js") + fs::file_size(out / "data" / "vocab.js");
  fs::remove_all(out);
  std::printf("{\"total_s\": %.2f, \"generate_s\": %.2f, \"report_bytes\": %ju, \"index_bytes\": %ju}\n",
              total, rows.gen_s, bytes, index);
  return 0;
}

struct Result {
  nlohmann::json j;
  double peak_rss_mb = 0;
};

Result spawn_child(const char* self, std::int64_t d_sae, std::int64_t tokens, int threads) {
  const fs::path out =
      fs::temp_directory_path() / cat("saelab-bench-report-", getpid(), "-", d_sae, "-", tokens);
  const std::string cmd =
      cat("'", self, "' --child ", d_sae, " ", tokens, " ", threads, " > '", out.string(), "'");
  std::vector<std::string> argv_s = {"/bin/sh", "-c", "exec " + cmd};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), environ) != 0)
    throw Error("cannot spawn " + cmd);
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(cat("setting d_sae ", d_sae, " failed: ", cmd));
  std::FILE* f = std::fopen(out.c_str(), "r");
  char buf[512] = {0};
  const std::size_t k = f ? std::fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) std::fclose(f);
  fs::remove(out);
  return {nlohmann::json::parse(std::string(buf, k)), static_cast<double>(ru.ru_maxrss) / 1024.0};
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc == 5 && std::string(argv[1]) == "--child")
    return child(std::stoll(argv[2]), std::stoll(argv[3]), std::stoi(argv[4]));
  int threads = 2;
  double scale = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--threads")
      threads = std::stoi(argv[i + 1]);
    else if (k == "--scale")
      scale = std::stod(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_report [--threads N] [--scale F]\n");
      return 2;
    }
  }
  at::set_num_threads(threads);
  std::printf("sgemm 2048^3: %.1f GFLOP/s on %d threads\n", bench::sgemm_gflops(3), threads);
  const auto M = static_cast<std::int64_t>(1000000 * scale);
  struct Setting {
    const char* name;
    std::int64_t d_sae, tokens;
  };
  const Setting settings[] = {{"A", 4096, M}, {"B", 24576, M}, {"C", 4096, 4 * M}};
  std::vector<Result> results;
  for (const auto& s : settings) {
    results.push_back(spawn_child(argv[0], s.d_sae, s.tokens, threads));
    const auto& r = results.back();
    const double t = r.j["total_s"].get<double>(), g = r.j["generate_s"].get<double>();
    std::printf(
        "%s  %6lld latents  %8lld tokens  %7.1f s (%.1f s generating rows, %.1f s report)  peak RSS %7.0f MB "
        " "
        "report %5.0f MB, index %.2f MB  %s\n",
        s.name, static_cast<long long>(s.d_sae), static_cast<long long>(s.tokens), t, g, t - g, r.peak_rss_mb,
        r.j["report_bytes"].get<double>() / 1e6, r.j["index_bytes"].get<double>() / 1e6,
        s.d_sae == 4096 && s.tokens == M
            ? (t - g < 120 ? "(target < 120 s: met)" : "(target < 120 s: MISSED)")
            : "");
  }
  std::printf("peak RSS 4M / 1M tokens (4,096 latents): %.3f (bounded: ~1)\n",
              results[2].peak_rss_mb / results[0].peak_rss_mb);
  return 0;
}
