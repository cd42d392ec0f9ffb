// Harvest throughput of the llama source on the real SmolLM2-135M file, printed next to what it is
// judged against, all measured in this one run at the same thread count:
//   - the machine's sgemm rate (torch::mm 2048^3): achieved GFLOP/s as a share of it (target 60%)
//   - the same forward in PyTorch: transformers' LlamaModel on the same dequantized weights
//     (torch_bench.py; target: saelab >= 1.2x its tokens/s)
// Hook blocks.15.hook_resid_pre (15 blocks run), batch 32 x 128 tokens.
//
//   bench_llama [--threads N] [--iters I] [--batch B] [--seq T] [--hook NAME] [--model FILE]
// The PyTorch side needs SAELAB_ORACLE_PYTHON (scripts/setup.sh --oracle); without it the ratio is
// not printed.
#include <cstdio>
#include <filesystem>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "bench_util.hpp"
#include "saelab/core/error.hpp"
#include "saelab/models/hooks.hpp"
#include "source.hpp"

namespace fs = std::filesystem;
using namespace saelab::llama;
using saelab::bench::best_seconds;
using saelab::bench::sgemm_gflops;

namespace {

// GEMM FLOPs of `blocks` Llama blocks on batch x seq tokens: the fused QKV, output, gate+up and
// down projections, plus the two attention products over the full seq x seq square.
double forward_flops(const Config& c, std::int64_t blocks, std::int64_t batch, std::int64_t seq) {
  const double n = static_cast<double>(batch * seq), d = static_cast<double>(c.d_model);
  const double q = static_cast<double>(c.q_width()), kv = static_cast<double>(c.kv_width());
  const double linear = 2.0 * n * (d * (q + 2 * kv) + q * d + 3.0 * d * static_cast<double>(c.d_mlp));
  const double attention = 2.0 * 2.0 * n * static_cast<double>(seq) * q;
  return static_cast<double>(blocks) * (linear + attention);
}

struct Args {
  int threads = 2, iters = 3;
  std::int64_t batch = 32, seq = 128;
  std::string hook = "blocks.15.hook_resid_pre";
  fs::path model = fs::path(SAELAB_SOURCE_DIR) / "data" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";
};

constexpr const char* kUsage =
    "usage: bench_llama [--threads N] [--iters N] [--batch B] [--seq T] [--hook NAME] [--model FILE.gguf]\n";

bool parse(int argc, char** argv, Args& a) {
  if (argc % 2 == 0) {  // an option without its value, or --help
    std::fputs(kUsage, stderr);
    return false;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads")
      a.threads = std::stoi(v);
    else if (k == "--iters")
      a.iters = std::stoi(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--seq")
      a.seq = std::stoll(v);
    else if (k == "--hook")
      a.hook = v;
    else if (k == "--model")
      a.model = v;
    else {
      std::fprintf(stderr, "unknown option %s\n%s", k.c_str(), kUsage);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines survive a timeout or a kill
  at::set_num_threads(a.threads);
  std::printf("threads: %d (at::get_num_threads() = %d)\n", a.threads, at::get_num_threads());
  const double sgemm_before = sgemm_gflops(a.iters);

  SourceOptions so;
  so.file = a.model;
  LlamaSource src(so);
  const Config& c = src.config();
  const auto point = saelab::models::parse_hook(a.hook, {"Llama", c.n_layer, c.d_model, c.d_mlp});
  const std::int64_t blocks = saelab::models::capture_plan({point}, c.n_layer).n_blocks;
  const auto tokens = at::randint(c.vocab_size, {a.batch, a.seq}, at::kLong);
  const double flops = forward_flops(c, blocks, a.batch, a.seq);
  auto harvest = [&] { src.run_with_hooks(tokens, {a.hook}); };
  double s = best_seconds(a.iters, harvest);

  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  double ref = -1;
  if (py && *py) {
    // Bracketed by two saelab sessions, as bench_gpt2 does: the shared machine's load drifts.
    const auto j = saelab::bench::run_json(
        saelab::cat(py, " ", SAELAB_SOURCE_DIR, "/bench/llama/torch_bench.py --gguf '", a.model.string(),
                    "' --batch ", a.batch, " --seq ", a.seq, " --blocks ", blocks, " --threads ", a.threads,
                    " --iters ", 2 * a.iters),
        fs::path(SAELAB_BINARY_DIR) / "bench-tmp" / "torch_llama_bench.json");
    if (j.is_object()) ref = j.at("seconds").get<double>();
    s = std::min(s, best_seconds(a.iters, harvest));
  }
  const double sgemm = std::max(sgemm_before, sgemm_gflops(a.iters));
  std::printf("sgemm 2048^3 (torch::mm), best of before/after: %8.1f GFLOP/s\n", sgemm);
  const double tps = static_cast<double>(a.batch * a.seq) / s;
  std::printf("saelab llama %s [%lldx%lld], %lld blocks:\n", a.hook.c_str(), static_cast<long long>(a.batch),
              static_cast<long long>(a.seq), static_cast<long long>(blocks));
  std::printf("  %.3f s/batch  %8.0f tokens/s  %6.1f GFLOP/s = %.0f%% of sgemm (target >= 60%%)\n", s, tps,
              flops / s / 1e9, 100.0 * flops / s / 1e9 / sgemm);
  if (!py || !*py) {
    std::printf("PyTorch: skipped (set SAELAB_ORACLE_PYTHON; scripts/setup.sh --oracle)\n");
    return 0;
  }
  if (ref <= 0) return 1;
  const double ref_tps = static_cast<double>(a.batch * a.seq) / ref;
  std::printf("PyTorch (transformers LlamaModel, same dequantized weights), first %lld blocks:\n",
              static_cast<long long>(blocks));
  std::printf("  %.3f s/batch  %8.0f tokens/s  %6.1f GFLOP/s = %.0f%% of sgemm\n", ref, ref_tps,
              flops / ref / 1e9, 100.0 * flops / ref / 1e9 / sgemm);
  std::printf("ratio saelab / PyTorch:          %.2fx (target >= 1.2x)\n", tps / ref_tps);
  return 0;
}
