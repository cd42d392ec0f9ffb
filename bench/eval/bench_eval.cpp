// Evaluation throughput on the real SmolLM2-135M (hook blocks.15.hook_resid_pre) with a
// 576 -> 4608 ReLU SAE, as `saelab eval` runs it (Evaluator "standard": clean, spliced, zero- and
// mean-ablated and SAE-plus-error-term runs per batch), all measured in this one run:
//   - the machine's sgemm rate (torch::mm 2048^3), for comparing machines;
//   - evaluated tokens/s, and the share of the time in the SAE (two applications per batch: the
//     spliced and the error-term runs, timed on the batch's real activations) against the model;
//   - a sweep's second evaluation, which takes the clean and ablated runs from the cache.
// The SAE is freshly initialised (dense ReLU: its cost does not depend on its weights).
//   bench_eval [--threads N] [--batches B] [--batch-size S] [--d-sae N]
#include <chrono>
#include <cstdio>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "bench_util.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/registry.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/interfaces/eval_cache.hpp"
#include "saelab/interfaces/evaluator.hpp"
#include "saelab/sae/apply.hpp"

using namespace saelab;

namespace {

struct Args {
  int threads = 2;
  std::int64_t batches = 4, batch_size = 8, d_sae = 4608;
};

bool parse(int argc, char** argv, Args& a) {
  if (argc % 2 == 0) {
    std::fputs("usage: bench_eval [--threads N] [--batches B] [--batch-size S] [--d-sae N]\n", stderr);
    return false;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads")
      a.threads = std::stoi(v);
    else if (k == "--batches")
      a.batches = std::stoll(v);
    else if (k == "--batch-size")
      a.batch_size = std::stoll(v);
    else if (k == "--d-sae")
      a.d_sae = std::stoll(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return false;
    }
  }
  return true;
}

Options options(const Registry& reg, const char* kind, const char* name,
                const std::map<std::string, OptionValue>& v) {
  return bench::plugin_options(reg, kind, name, v, "bench_eval");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  at::set_num_threads(a.threads);
  const double sgemm = bench::sgemm_gflops(3);
  Registry reg;
  for (const char* p : {"llama", "sae_relu_l1", "evaluator_standard"})
    load_plugin_library(reg, cat(SAELAB_PLUGIN_DIR, "/libsaelab_plugin_", p, ".so"));
  PluginContext pc;
  auto src = reg.create<ActivationSource>("llama", options(reg, "source", "llama", {}), pc);
  const std::string hook = "blocks.15.hook_resid_pre";
  const std::int64_t d_in = src->info().hooks.at(hook);
  auto sae = reg.create<SaeArchitecture>(
      "relu_l1", options(reg, "sae", "relu_l1", {{"d_in", d_in}, {"d_sae", a.d_sae}}), pc);
  auto evaluator = reg.create<Evaluator>(
      "standard",
      options(reg, "evaluator", "standard", {{"batches", a.batches}, {"batch_size", a.batch_size}}), pc);
  CorpusConfig corpus;
  corpus.paths = {std::string(SAELAB_SOURCE_DIR) + "/data/corpus/sotu"};
  corpus.context_size = 128;
  corpus.prepend_bos = false;

  EvalCache cache;
  auto evaluate = [&](EvalCache* c) {
    TokenBatches tokens(corpus, *src);
    EvalContext ctx{*sae, src.get(), hook, &tokens, nullptr, 1.0, {}};
    ctx.cache = c;
    const auto t0 = std::chrono::steady_clock::now();
    const auto j = evaluator->evaluate(ctx);
    return std::make_pair(seconds_since(t0), j["counts"]["tokens_evaluated"].get<std::int64_t>());
  };
  const auto [first_s, tokens] = evaluate(&cache);
  const auto [cached_s, cached_tokens] = evaluate(&cache);

  // The SAE's own time: one application per spliced run, on a batch's real activations.
  TokenBatches tb(corpus, *src);
  const auto x = src->run_with_hooks(tb.next(a.batch_size), {hook}).at(hook).reshape({-1, d_in});
  torch::NoGradGuard no_grad;
  const double sae_s = bench::best_seconds(3, [&] { apply_sae(*sae, x, 1.0); });
  const double sae_share = 2.0 * double(a.batches) * sae_s / first_s;

  std::printf("sgemm 2048^3 (torch::mm): %.1f GFLOP/s, %d threads\n", sgemm, a.threads);
  std::printf("evaluate SmolLM2-135M %s, SAE %lld -> %lld, %lld batches x %lld x 128:\n", hook.c_str(),
              static_cast<long long>(d_in), static_cast<long long>(a.d_sae),
              static_cast<long long>(a.batches), static_cast<long long>(a.batch_size));
  std::printf("  %.1f s, %.0f evaluated tokens/s (5 model runs per batch)\n", first_s,
              double(tokens) / first_s);
  std::printf(
      "  time in the SAE %.1f%% (%.3f s per application of %lld rows), in the model and metrics %.1f%%\n",
      100 * sae_share, sae_s, static_cast<long long>(x.size(0)), 100 * (1 - sae_share));
  std::printf("  a sweep's next SAE (clean and ablated runs from the cache): %.1f s, %.0f tokens/s, %.2fx\n",
              cached_s, double(cached_tokens) / cached_s, first_s / cached_s);
  return 0;
}
