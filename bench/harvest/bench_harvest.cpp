// Many SAEs from one forward pass: the harvest of k hooks in one run (harvest.hooks) against k
// separate one-hook harvests of the same rows, measured side by side in one process through the
// runner (model, store writes and all), on SmolLM2-135M (experiments/smollm2-135m-three-layers.yaml,
// shortened). Also times the train stage that follows (one SAE per hook from the one harvest), and
// checks that each hook's store is the same in both ways, shard checksum for shard checksum.
//
//   bench_harvest [--tokens N] [--threads T] [--hooks H1,H2,...]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "saelab/config/config.hpp"
#include "saelab/core/error.hpp"
#include "saelab/stages/runner.hpp"

namespace fs = std::filesystem;
using saelab::cat;

namespace {

struct Args {
  std::int64_t tokens = 20'000;
  int threads = 2;
  std::vector<std::string> hooks = {"blocks.5.hook_resid_post", "blocks.15.hook_resid_post",
                                    "blocks.25.hook_resid_post"};
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--tokens") {
      a.tokens = std::stoll(v);
    } else if (k == "--threads") {
      a.threads = std::stoi(v);
    } else if (k == "--hooks") {
      a.hooks.clear();
      std::stringstream ss(v);
      for (std::string h; std::getline(ss, h, ',');) a.hooks.push_back(h);
    } else {
      throw saelab::UsageError(cat("unknown argument ", k,
                                   "; usage: bench_harvest [--tokens N] [--threads T] "
                                   "[--hooks H1,H2,...]"));
    }
  }
  return a;
}

std::string list(const std::vector<std::string>& hooks) {
  std::string s;
  for (const auto& h : hooks) s += (s.empty() ? "" : ",") + h;
  return "[" + s + "]";
}

// Runs `stages` of the three-layer experiment with `sets` into `out`; wall seconds.
double run(const fs::path& out, const std::string& stages, const std::vector<std::string>& sets) {
  saelab::RunRequest q;
  q.config_file = fs::path(SAELAB_SOURCE_DIR) / "experiments" / "smollm2-135m-three-layers.yaml";
  q.out_dir = out;
  q.overwrite = true;
  q.overrides.push_back(saelab::parse_override("stages=" + stages));
  for (const auto& s : sets) q.overrides.push_back(saelab::parse_override(s));
  const auto t0 = std::chrono::steady_clock::now();
  saelab::run_experiment(q);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string shard_hashes(const fs::path& store) {
  std::ifstream in(store / "manifest.json");
  const auto m = nlohmann::json::parse(in);
  std::string s;
  for (const auto& shard : m["shards"]) s += shard["sha256"].get<std::string>();
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  fs::current_path(SAELAB_SOURCE_DIR);  // the experiment's model and corpus paths are relative
  const fs::path root = fs::path(SAELAB_BINARY_DIR) / "bench-tmp" / "harvest";
  const std::string tokens = cat("harvest.tokens=", a.tokens), threads = cat("threads=", a.threads);
  const double gflops = saelab::bench::sgemm_gflops(3);
  std::printf("bench_harvest: SmolLM2-135M, %zu hooks, %lld rows each, %d threads; sgemm %.1f GFLOP/s\n",
              a.hooks.size(), static_cast<long long>(a.tokens), a.threads, gflops);

  const double together =
      run(root / "together", "[harvest]", {tokens, threads, "harvest.hooks=" + list(a.hooks)});
  double separate = 0;
  bool same = true;
  for (const auto& hook : a.hooks) {
    const fs::path out = root / ("one-" + hook);
    const double s = run(out, "[harvest]", {tokens, threads, "harvest.hooks=[]", "harvest.hook=" + hook});
    std::printf("  one-hook harvest of %-28s %7.1f s\n", hook.c_str(), s);
    separate += s;
    same = same && shard_hashes(out / "store") == shard_hashes(root / "together" / "store" / hook);
  }
  std::printf("harvest of %zu hooks in one pass: %.1f s; %zu one-hook harvests: %.1f s; ratio %.2fx\n",
              a.hooks.size(), together, a.hooks.size(), separate, separate / together);
  std::printf("each hook's store identical both ways (shard SHA-256): %s\n", same ? "yes" : "NO");
  const double train = run(root / "train", "[train]",
                           {tokens, threads, "harvest.hooks=" + list(a.hooks), "train.training_tokens=40960",
                            "harvest.store_dir=" + (root / "together" / "store").string()});
  std::printf(
      "train stage, one SAE per hook from the one harvest (40960 tokens each): %.1f s, no model pass\n",
      train);
  return same ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_harvest: %s\n", e.what());
  return 1;
}
