#pragma once
// Process-wide runtime settings: device, threads, and which BLAS LibTorch is really using.
// Threads are set here only, from main() or the experiment runner; plugins never set them.
#include <cstdint>
#include <string>

#include <torch/types.h>

#include "saelab/core/export.hpp"

namespace saelab {

// "auto" -> cuda when available, else cpu; "cpu"; "cuda"; "cuda:N". Throws ConfigError when CUDA
// is asked for but this LibTorch has none (Debian's is CPU-only; official builds via CMAKE_PREFIX_PATH).
SAELAB_API torch::Device resolve_device(const std::string& spec);

// LibTorch's intra-op threads and OpenBLAS's (when it is the BLAS); threads <= 0 means all cores.
SAELAB_API void configure_threads(std::int64_t threads);
// The threads OpenBLAS multiplies matrices with; -1 when the BLAS is not OpenBLAS.
SAELAB_API int blas_threads();

struct SAELAB_API BlasInfo {
  std::string library;  // resolved path of the loaded BLAS (from /proc/self/maps)
  std::string kind;     // "openblas", "mkl", "reference", "unknown"
  bool slow = false;    // reference BLAS: about 10x slower than OpenBLAS
};
SAELAB_API BlasInfo blas_info();

// Peak resident memory of this process so far (VmHWM of /proc/self/status), in MiB; 0 where the
// system has no /proc.
SAELAB_API double peak_rss_mib();

// Measured single-precision matmul rate (n x n x n), GFLOP/s, best of `reps`.
SAELAB_API double measure_sgemm_gflops(std::int64_t n = 1024, int reps = 3);

}  // namespace saelab

namespace saelab {
// One line for logs and `saelab plugins`: "BLAS: openblas (/usr/lib/...), 2 threads".
SAELAB_API std::string blas_summary();
}  // namespace saelab
