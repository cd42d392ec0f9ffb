// bench_sae: SAE training-step throughput, measured side by side in one run.
//
//   1. sgemm: torch::mm of two 2048x2048 float matrices (the machine's GEMM rate)
//   2. standard SAE (relu_l1 plugin) training step, 768 -> 4096 and 768 -> 24576, batch 4096, as
//      the trainer runs it with its defaults: forward + mse + l1 + backward + decoder-gradient
//      projection + gradient-norm clipping at 1 + Adam (the trainer's) + renormalisation + firing
//      counts for dead-latent tracking.
//      Achieved GFLOP/s counts the 5 GEMMs (2 forward, 3 backward), 5 * 2*B*d_in*d_sae, and is
//      compared with sgemm (target ≥ 85%).
//   3. the same step in PyTorch Python (bench/sae/torch_sae_step.py in the oracle venv named by
//      SAELAB_ORACLE_PYTHON), same thread count (target saelab ≥ 1.5x)
//   4. TopK k=32, 768 -> 24576: sparse (gathered rows) vs dense decode, forward + backward
//      (target ≥ 3x), and the whole TopK training step with either decode.
//
// Usage: bench_sae [--threads N] [--steps S] [--quick] [--no-python]
// Times are the best of S steps after one warm-up step (the machine is shared; the best is the
// least disturbed), medians are printed too.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "saelab/interfaces/loss.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/sae/math.hpp"
#include "saelab/train/adam.hpp"
#include "saelab/train/latent_stats.hpp"

namespace saelab::bench {
namespace {

struct Args {
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  int steps = 3;
  bool quick = false;
  bool python = true;
};

struct Timing {
  double best = 0, median = 0;
};

Timing summarize(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2]};
}

template <class F>
Timing time_it(F&& f, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return summarize(t);
}

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry();
    for (const char* lib : {"sae_relu_l1", "sae_topk", "losses"})
      load_plugin_library(*reg, std::string(SAELAB_PLUGIN_DIR) + "/libsaelab_plugin_" + lib + ".so");
    return reg;
  }();
  return *r;
}

Options options(const std::string& kind, const std::string& name,
                const std::vector<std::pair<std::string, OptionValue>>& values) {
  Options o = default_options(registry().find(kind, name)->schema, kind);
  for (const auto& [k, v] : values) o.set_given(k, v);
  return o;
}

double sgemm_gflops(int reps) {
  auto a = at::randn({2048, 2048}), b = at::randn({2048, 2048}), c = at::empty({2048, 2048});
  auto t = time_it([&] { at::mm_out(c, a, b); }, 2, reps);
  return 2.0 * 2048.0 * 2048.0 * 2048.0 / t.best / 1e9;
}

// One SAE with its losses and optimiser; step() is one full training step.
struct StepRunner {
  std::shared_ptr<SaeArchitecture> sae;
  std::vector<std::shared_ptr<Loss>> losses;
  std::unique_ptr<Adam> opt;
  std::vector<at::Tensor> params;
  at::Tensor x, dead, fired;

  StepRunner(const std::string& plugin, std::vector<std::pair<std::string, OptionValue>> sae_opts,
             const std::vector<std::string>& loss_names, std::int64_t batch, std::int64_t d_in) {
    PluginContext ctx;
    ctx.seed = 1;
    sae = registry().create<SaeArchitecture>(plugin, options("sae", plugin, sae_opts), ctx);
    for (const auto& n : loss_names)
      losses.push_back(registry().create<Loss>(n, options("loss", n, {}), ctx));
    std::map<std::string, at::Tensor> named;
    for (const auto& p : sae->named_parameters()) named[p.key()] = p.value();
    opt = std::make_unique<Adam>(named, AdamConfig{});
    params = sae->parameters();
    x = at::randn({batch, d_in});
    dead = at::zeros({sae->shape().d_sae}, at::kBool);
  }

  void step() {
    // Gradients are dropped, not zeroed: a zeroed gradient costs a pass to clear and another to
    // accumulate into.
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    auto out = sae->forward(x);
    LossContext ctx{x, out, *sae, dead, TrainProgress{1, 1}};
    at::Tensor total;
    for (auto& l : losses) {
      auto v = l->compute(ctx);
      total = total.defined() ? total + v : v;
    }
    total.backward();
    sae->before_optimizer_step();
    clip_grad_norm(params, 1.0);
    opt->step(1e-4);
    sae->after_optimizer_step();
    fired = fire_counts(out.latents);
  }
};

struct PythonResult {
  bool ok = false;
  Timing t;
  std::string error;
};

PythonResult python_step(const Args& a, std::int64_t d_sae, std::int64_t batch) {
  PythonResult r;
  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  if (!py || !*py) {
    r.error =
        "SAELAB_ORACLE_PYTHON is not set: create the oracle venv with scripts/setup.sh "
        "--oracle and export SAELAB_ORACLE_PYTHON=<venv>/bin/python";
    return r;
  }
  std::string cmd = cat(py, " ", SAELAB_SOURCE_DIR, "/bench/sae/torch_sae_step.py --threads ", a.threads,
                        " --d-sae ", d_sae, " --batch ", batch, " --steps ", a.steps);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    r.error = cat("cannot run '", cmd, "'");
    return r;
  }
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  try {
    auto j = nlohmann::json::parse(out.substr(out.rfind('{')));
    r.t = summarize(j.at("step_s").get<std::vector<double>>());
    r.ok = rc == 0;
  } catch (const std::exception& e) {
    r.error = cat("'", cmd, "' exited with ", rc, " and printed: ", out);
  }
  return r;
}

// Standard SAE training step, C++ and Python; returns false if a comparison could not be made.
bool bench_standard(const Args& a, double sgemm, std::int64_t d_sae, std::int64_t batch) {
  const std::int64_t d_in = 768;
  StepRunner t("relu_l1", {{"d_in", d_in}, {"d_sae", d_sae}}, {"mse", "l1"}, batch, d_in);
  auto tm = time_it([&] { t.step(); }, 1, a.steps);
  const double flops = 5.0 * 2.0 * double(batch) * double(d_in) * double(d_sae);
  const double gf = flops / tm.best / 1e9;
  std::printf(
      "relu_l1 %ld->%ld batch %ld: %.3f s/step (median %.3f), %.0f tokens/s, "
      "%.1f GFLOP/s = %.0f%% of sgemm (target >= 85%%)\n",
      d_in, d_sae, batch, tm.best, tm.median, double(batch) / tm.best, gf, 100.0 * gf / sgemm);
  if (!a.python) return true;
  auto py = python_step(a, d_sae, batch);
  if (!py.ok) {
    std::printf("  PyTorch Python: FAILED: %s\n", py.error.c_str());
    return false;
  }
  std::printf(
      "  PyTorch Python same step: %.3f s/step (median %.3f), %.0f tokens/s; "
      "saelab is %.2fx faster (target >= 1.5x)\n",
      py.t.best, py.t.median, double(batch) / py.t.best, py.t.best / tm.best);
  return true;
}

void bench_topk_decode(const Args& a, std::int64_t d_sae, std::int64_t batch, std::int64_t k) {
  const std::int64_t d_in = 768;
  auto W = (at::randn({d_sae, d_in}) / 28.0).requires_grad_();
  auto b = at::zeros({d_in}).requires_grad_();
  auto idx = sae_math::topk_indices(at::randn({batch, d_sae}), k);
  auto vals = at::rand({batch, k}).requires_grad_();
  auto g = at::randn({batch, d_in});
  auto clear = [&] {
    for (auto* p : {&W, &b, &vals}) p->mutable_grad() = at::Tensor();
  };
  auto sparse = time_it(
      [&] {
        clear();
        auto out = sae_math::sparse_decode(sae_math::uniform_rows(vals, idx), W) + b;
        out.backward(g);
      },
      1, a.steps);
  // The dense path decodes the [batch, d_sae] latents the SAE returns anyway.
  auto zd = sae_math::densify(sae_math::uniform_rows(vals, idx), d_sae);
  auto dense = time_it(
      [&] {
        clear();
        auto z = zd.detach().requires_grad_();
        auto out = at::addmm(b, z, W);
        out.backward(g);
      },
      1, a.steps);
  std::printf(
      "topk k=%ld %ld->%ld batch %ld decode (forward + backward): sparse %.4f s, "
      "dense %.4f s: sparse is %.1fx faster (target >= 3x)\n",
      k, d_in, d_sae, batch, sparse.best, dense.best, dense.best / sparse.best);

  double step_s[2];
  for (int sp = 0; sp < 2; ++sp) {
    StepRunner t(
        "topk",
        {{"d_in", d_in}, {"d_sae", d_sae}, {"k", k}, {"decode", std::string(sp ? "sparse" : "dense")}},
        {"mse"}, batch, d_in);
    step_s[sp] = time_it([&] { t.step(); }, 1, a.steps).best;
  }
  std::printf("  topk training step (mse): sparse decode %.3f s, dense decode %.3f s (%.2fx)\n", step_s[1],
              step_s[0], step_s[0] / step_s[1]);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--threads" && i + 1 < argc)
      a.threads = std::atoi(argv[++i]);
    else if (s == "--steps" && i + 1 < argc)
      a.steps = std::atoi(argv[++i]);
    else if (s == "--quick")
      a.quick = true;
    else if (s == "--no-python")
      a.python = false;
    else
      throw UsageError(cat("bench_sae: unknown argument '", s,
                           "'; usage: bench_sae [--threads N] [--steps S] [--quick] [--no-python]"));
  }
  if (a.threads < 1 || a.steps < 1) throw UsageError("bench_sae: --threads and --steps must be ≥ 1");
  return a;
}

int run(int argc, char** argv) {
  Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  std::printf("bench_sae: %d threads (at::get_num_threads() = %d), best of %d steps\n", a.threads,
              at::get_num_threads(), a.steps);
  const double sgemm = sgemm_gflops(5);
  std::printf("sgemm 2048^3: %.1f GFLOP/s\n", sgemm);
  const std::int64_t batch = a.quick ? 512 : 4096;
  bool ok = true;
  for (std::int64_t d_sae : {std::int64_t(4096), std::int64_t(a.quick ? 8192 : 24576)})
    ok = bench_standard(a, sgemm, d_sae, batch) && ok;
  bench_topk_decode(a, a.quick ? 8192 : 24576, batch, 32);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace saelab::bench

int main(int argc, char** argv) {
  try {
    return saelab::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sae: %s\n", e.what());
    return 1;
  }
}
