// Test driver: harvests synthetic rows into an hdf5 store, resuming from whatever is committed.
//
//   store_harvest_driver DIR
//
// Layout is fixed (d 24, float16, shard_rows 60, chunk_rows 16, 80 sequences appended 3 at a time).
// With SAELAB_STORE_DRIVER_PAUSE=point:n (point one of shard_open, chunk_written, shard_closed,
// shard_renamed, manifest_written) the driver prints "PAUSED point n" when it reaches that point
// for the n-th time and waits there to be killed. On success it prints "DONE rows sequences".
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <unistd.h>

#include "store_test_util.hpp"

using namespace saelab;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE_DIR\n", argv[0]);
    return 2;
  }
  auto cfg = store_test::test_config(RowDtype::Float16, 60, 16);
  const char* pause_at = std::getenv("SAELAB_STORE_DRIVER_PAUSE");
  if (pause_at && *pause_at) {
    const std::string spec = pause_at;
    const std::string point = spec.substr(0, spec.find(':'));
    const long target = std::stol(spec.substr(spec.find(':') + 1));
    auto count = std::make_shared<long>(0);
    cfg.test_hook = [point, target, count](const std::string& at) {
      if (at != point || ++*count != target) return;
      std::printf("PAUSED %s %ld\n", at.c_str(), target);
      std::fflush(stdout);
      for (;;) ::pause();
    };
  }
  try {
    const NormStats st = store_test::harvest(argv[1], cfg, 24, 80, 3, true);
    std::printf("DONE %lld\n", static_cast<long long>(st.rows));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "driver: %s\n", e.what());
    return 1;
  }
}
