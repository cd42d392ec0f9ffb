// Threads: a configured thread count bounds OpenBLAS's pool too, not only LibTorch's.
#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "saelab/core/runtime.hpp"

namespace saelab {
namespace {

TEST(Runtime, ThreadCountBoundsOpenBlasToo) {
  const BlasInfo b = blas_info();
  ASSERT_EQ(b.kind, "openblas") << "LibTorch runs on '" << b.kind << "' (" << b.library
                                << "); scripts/setup.sh installs libopenblas0-pthread";
  const int all = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  for (int n : {1, 2, all, 1}) {
    configure_threads(n);
    EXPECT_EQ(at::get_num_threads(), n);
    EXPECT_EQ(blas_threads(), n) << "OpenBLAS kept its own thread count after configure_threads(" << n << ")";
  }
  std::printf("  configure_threads(1): LibTorch %d, OpenBLAS %d threads; %s\n", at::get_num_threads(),
              blas_threads(), blas_summary().c_str());
  EXPECT_NE(blas_summary().find("(OpenBLAS 1)"), std::string::npos) << blas_summary();
}

}  // namespace
}  // namespace saelab
