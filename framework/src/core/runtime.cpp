#include "saelab/core/runtime.hpp"

#include <dlfcn.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/ATen.h>

#include "saelab/core/error.hpp"

namespace saelab {

torch::Device resolve_device(const std::string& spec) {
  const bool cuda = at::hasCUDA();
  if (spec == "auto") return cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::kCPU;
  if (spec.rfind("cuda", 0) == 0) {
    if (!cuda)
      throw ConfigError(cat("device '", spec,
                            "' was requested, but this LibTorch build has no CUDA "
                            "support or no GPU is visible. Use device: cpu, or build saelab against "
                            "an official CUDA LibTorch (cmake -DCMAKE_PREFIX_PATH=/path/to/libtorch)."));
    try {
      return torch::Device(spec);
    } catch (const std::exception&) {
      throw ConfigError(cat("device '", spec, "' is not a device name; use auto, cpu, cuda or cuda:N"));
    }
  }
  throw ConfigError(cat("device '", spec, "' is not a device name; use auto, cpu, cuda or cuda:N"));
}

namespace {
// OpenBLAS's own thread pool, found at run time: LibTorch links whichever BLAS the system provides.
template <class F>
F openblas_function(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_DEFAULT, name));
}
}  // namespace

void configure_threads(std::int64_t threads) {
  int n = threads > 0 ? static_cast<int>(threads)
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  // LibTorch sizes its own pool (and MKL's) but not OpenBLAS's, which otherwise runs one thread per
  // core in every process: a run asked for 1 thread would still multiply matrices on all cores,
  // and the ranks of a data-parallel run on one host would oversubscribe it.
  if (auto set = openblas_function<void (*)(int)>("openblas_set_num_threads")) set(n);
}

int blas_threads() {
  auto get = openblas_function<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

BlasInfo blas_info() {
  // Make sure the BLAS is loaded (LibTorch loads it lazily with the first matmul on some builds).
  (void)at::mm(at::ones({2, 2}), at::ones({2, 2}));
  BlasInfo info;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find("openblas") != std::string::npos) {
      info.library = path;
      info.kind = "openblas";
      break;
    }
    if (path.find("libmkl") != std::string::npos) {
      info.library = path;
      info.kind = "mkl";
      break;
    }
    if (path.find("/libblas.so") != std::string::npos || path.find("/blas/libblas") != std::string::npos) {
      info.library = path;
      info.kind = "reference";
    }
  }
  if (info.kind.empty()) info.kind = "unknown";
  info.slow = info.kind == "reference";
  return info;
}

double measure_sgemm_gflops(std::int64_t n, int reps) {
  at::NoGradGuard no_grad;
  auto a = at::randn({n, n});
  auto b = at::randn({n, n});
  auto c = at::mm(a, b);  // warm-up
  double best = 0;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    at::mm_out(c, a, b);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * double(n) * double(n) * double(n) / s / 1e9);
  }
  return best;
}

}  // namespace saelab

namespace saelab {
std::string blas_summary() {
  BlasInfo b = blas_info();
  const int blas = blas_threads();
  std::string s =
      cat("BLAS: ", b.kind, b.library.empty() ? "" : " (" + b.library + ")", ", ", at::get_num_threads(),
          " threads", blas > 0 ? cat(" (OpenBLAS ", blas, ")") : std::string());
  if (b.slow) s += " -- reference BLAS is ~10x slower: sudo apt-get install libopenblas0-pthread";
  return s;
}
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

}  // namespace saelab
