// Steering and monitoring speed on a trained run (default: the steer tests' run, build/steer-run;
// any run directory works, e.g. the default experiment's runs/default). Measured in one run with
// the machine's sgemm rate:
//   generation  64 greedy tokens after a 9-token prompt: no edit, adding a decoder row, clamping a
//               latent through the SAE, both, and no edit without the key/value cache
//   monitor     State of the Union text in 128-token windows: the monitor's evaluated tokens/s,
//               and the bare forward pass to the hook over the same windows
//   bench_steer [RUN] [--threads N]
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstring>

#include "bench_util.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/stages/inspect.hpp"
#include "saelab/steer/monitor.hpp"
#include "saelab/steer/steering.hpp"

using namespace saelab;

namespace {

double generation_rate(Inspection& in, const std::vector<HookEdit>& edits, bool cache) {
  const auto prompt = in.source->tokenize("The state of the Union is strong, and the people");
  GenerateOptions o;
  o.max_new_tokens = 64;
  o.use_cache = cache;
  o.edits = edits;
  std::size_t n = 0;
  const double s = bench::best_seconds(2, [&] { n = in.source->generate(prompt, o).size(); });
  return static_cast<double>(n) / s;
}

struct MonitorRate {
  double monitor = 0, forward = 0;
  std::int64_t tokens = 0;
};

MonitorRate monitor_rate(Inspection& in, std::int64_t latent) {
  const std::string text =
      read_file(std::string(SAELAB_SOURCE_DIR) + "/data/corpus/sotu/2021_joseph_r_biden_d.txt", 1 << 24,
                "corpus")
          .substr(0, 60000);
  MonitorOptions mo;
  mo.skip = in.rows.first_position;
  mo.prepend_bos = in.prepend_bos;
  MonitorRate r;
  std::int64_t lines = 0;
  const double s = bench::best_seconds(1, [&] {
    Monitor m(*in.source, *in.sae.sae, in.hook, {{latent, 1.0, "bench"}}, mo,
              [&](const nlohmann::json&) { ++lines; });
    m.add({0, text, false});
    m.flush();
    r.tokens = m.stats().tokens;
  });
  r.monitor = static_cast<double>(r.tokens) / s;
  // The same windows (stride 125, 8 per pass) through the model to the hook only.
  const auto ids = in.source->tokenize(text);
  const std::int64_t W = 128, stride = W - mo.skip;
  std::vector<torch::Tensor> windows;
  for (std::int64_t at = 0; at + W <= static_cast<std::int64_t>(ids.size()); at += stride)
    windows.push_back(torch::tensor(std::vector<std::int64_t>(ids.begin() + at, ids.begin() + at + W)));
  const double f = bench::best_seconds(1, [&] {
    for (std::size_t b = 0; b < windows.size(); b += 8) {
      const auto batch = at::stack(std::vector<torch::Tensor>(
          windows.begin() + static_cast<std::ptrdiff_t>(b),
          windows.begin() + static_cast<std::ptrdiff_t>(std::min(windows.size(), b + 8))));
      in.source->run_with_hooks(batch, {in.hook});
    }
  });
  r.forward = static_cast<double>(windows.size() * static_cast<std::size_t>(W - mo.skip)) / f;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string run = SAELAB_DEFAULT_RUN;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else
      run = argv[i];
  }
  if (threads > 0) at::set_num_threads(threads);  // else LibTorch's default, as the saelab verbs run
  try {
    Inspection in = open_inspection(run, {});
    const LatentReference ref = inspection_reference(in, {}, 200000, {});
    const auto f = std::get<1>(ref.max.max(0)).item<std::int64_t>();
    const SteerTarget t{in.sae.sae, in.hook, in.sae.sae->shape().d_in, &ref};
    std::printf("run %s: %s, hook %s, %lld latents; %d threads, sgemm %.0f GFLOP/s\n", run.c_str(),
                in.source->info().model_id.c_str(), in.hook.c_str(),
                static_cast<long long>(in.sae.sae->shape().d_sae), at::get_num_threads(),
                bench::sgemm_gflops(3));
    const double plain = generation_rate(in, {}, true);
    const auto add =
        steering_edits(t, {parse_feature_steer(std::to_string(f) + ":+1x")}, {}, EditPositions::All);
    const auto clamp =
        steering_edits(t, {parse_feature_steer(std::to_string(f) + ":clamp=0.5x")}, {}, EditPositions::All);
    auto both = add;
    both.insert(both.end(), clamp.begin(), clamp.end());
    const double r_add = generation_rate(in, add, true), r_clamp = generation_rate(in, clamp, true),
                 r_both = generation_rate(in, both, true), r_nocache = generation_rate(in, {}, false);
    std::printf("generation, 64 greedy tokens with the key/value cache:\n");
    std::printf("  no intervention          %6.1f tok/s\n", plain);
    std::printf("  add a decoder row        %6.1f tok/s  (%.2fx)\n", r_add, r_add / plain);
    std::printf("  clamp through the SAE    %6.1f tok/s  (%.2fx)\n", r_clamp, r_clamp / plain);
    std::printf("  both                     %6.1f tok/s  (%.2fx)\n", r_both, r_both / plain);
    std::printf("  no intervention, no cache %5.1f tok/s  (the cache is %.1fx faster)\n", r_nocache,
                plain / r_nocache);
    const MonitorRate m = monitor_rate(in, f);
    std::printf(
        "monitor, %lld evaluated tokens in 128-token windows: %.0f tok/s; the bare forward pass to the hook "
        "%.0f tok/s (monitor = %.2fx of it)\n",
        static_cast<long long>(m.tokens), m.monitor, m.forward, m.monitor / m.forward);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_steer: %s\n", e.what());
    return 1;
  }
  return 0;
}
