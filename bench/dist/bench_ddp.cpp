// One rank of the data-parallel training benchmark (bench/dist/run.sh launches it alone and under
// torchrun). Trains a ReLU + L1 SAE with the real Trainer on random rows held in memory (so the
// store is not what is measured) and prints one JSON line: step time, tokens/s, bytes all-reduced
// per step, the time a step waited for them, and the time one synchronous all-reduce of those
// bytes takes on its own.
//   bench_ddp --d-in 768 --d-sae 24576 --batch 4096 --steps 12 [--no-overlap] [--threads N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <ATen/Parallel.h>

#include "bench_util.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/runtime.hpp"
#include "saelab/data/memory_reader.hpp"
#include "saelab/dist/process_group.hpp"
#include "saelab/train/trainer.hpp"

namespace fs = std::filesystem;
using namespace saelab;

namespace {

struct Args {
  std::int64_t d_in = 768, d_sae = 24576, batch = 4096, steps = 12, threads = 0;
  bool overlap = true;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) throw UsageError(cat("bench_ddp: ", k, " needs a value"));
      return std::stoll(argv[++i]);
    };
    if (k == "--d-in")
      a.d_in = next();
    else if (k == "--d-sae")
      a.d_sae = next();
    else if (k == "--batch")
      a.batch = next();
    else if (k == "--steps")
      a.steps = next();
    else if (k == "--threads")
      a.threads = next();
    else if (k == "--no-overlap")
      a.overlap = false;
    else
      throw UsageError(cat("bench_ddp: unknown argument ", k));
  }
  return a;
}

// One synchronous all-reduce of `bytes`, best of 3.
double all_reduce_alone_s(dist::ProcessGroup& g, std::int64_t bytes) {
  torch::Tensor t = torch::ones({bytes / 4});
  return bench::best_seconds(3, [&] { g.all_reduce(t, dist::ReduceOp::Sum, "the benchmark's all-reduce"); });
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const auto env = dist::launch_env();
  const int local = env && env->distributed() ? env->local_world_size : 1;
  configure_threads(a.threads > 0 ? a.threads
                                  : std::max<std::int64_t>(1, std::thread::hardware_concurrency() / local));
  std::shared_ptr<dist::ProcessGroup> group;
  if (env && env->distributed()) group = dist::ProcessGroup::connect(*env, {}, torch::kCPU);
  const int rank = group ? group->rank() : 0;

  Registry reg;
  for (const char* lib : {"sae_relu_l1", "losses"})
    load_plugin_library(reg, std::string(SAELAB_PLUGIN_DIR) + "/libsaelab_plugin_" + lib + ".so");
  PluginContext ctx;
  ctx.seed = 1;
  ctx.group = group;
  TrainerInputs in;
  in.sae = reg.create<SaeArchitecture>(
      "relu_l1",
      bench::plugin_options(reg, "sae", "relu_l1", {{"d_in", a.d_in}, {"d_sae", a.d_sae}}, "bench_ddp"), ctx);
  for (const char* l : {"mse", "l1"})
    in.losses.push_back(reg.create<Loss>(l, bench::plugin_options(reg, "loss", l, {}, "bench_ddp"), ctx));
  ReaderOptions ro;
  ro.batch_rows = a.batch;
  ro.seed = 3;
  TensorActivationReader reader(
      torch::randn({a.batch * 4, a.d_in}, at::TensorOptions().dtype(torch::kFloat32)), ro);
  in.reader = &reader;
  const fs::path run_dir = fs::temp_directory_path() / cat("saelab-bench-ddp-", ::getpid());
  in.run_dir = run_dir;
  in.parallel.group = group;
  in.parallel.overlap = a.overlap;
  in.parallel.check_every_steps = 0;
  TrainerConfig tc;
  tc.batch_size = a.batch;
  tc.training_tokens = a.batch * (a.steps + 2);
  tc.lr_warmup_steps = 1;
  tc.normalize_inputs = false;
  tc.init_sample_batches = 1;
  tc.metrics_every_steps = 1 << 30;
  Trainer trainer(tc, std::move(in));
  RunOptions opts;
  opts.save_sae = false;
  opts.handle_signals = false;
  trainer.start(opts);
  trainer.advance();  // warm-up steps: allocator, BLAS buffers, Gloo pairs
  trainer.advance();
  const auto t0 = std::chrono::steady_clock::now();
  while (trainer.advance()) {
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const TrainResult r = trainer.finish();
  fs::remove_all(run_dir);
  const double step_s = secs / double(a.steps);
  const int world = group ? group->size() : 1;
  nlohmann::json out = {{"rank", rank},
                        {"world", world},
                        {"threads", at::get_num_threads()},
                        {"d_in", a.d_in},
                        {"d_sae", a.d_sae},
                        {"batch", a.batch},
                        {"overlap", a.overlap},
                        {"step_s", step_s},
                        {"tokens_per_s", double(a.batch) / step_s},
                        {"sgemm_gflops", bench::sgemm_gflops(2)}};
  if (group) {
    out["all_reduce_bytes_per_step"] = r.all_reduce.bytes_per_step;
    out["buckets"] = r.all_reduce.buckets;
    out["all_reduce_wait_s_per_step"] = r.all_reduce.wait_s / double(r.all_reduce.steps);
    out["all_reduce_alone_s"] = all_reduce_alone_s(*group, r.all_reduce.bytes_per_step);
  }
  if (rank == 0) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ddp: %s\n", e.what());
    return 1;
  }
}
