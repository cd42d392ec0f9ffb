// A training process for the out-of-process interruption tests (process_test.cpp):
//   trainer_child <run_dir> fresh|resume [slow_ms]
// runs test::small_run_in(run_dir), sleeping slow_ms at every metrics step so that the parent can
// signal it mid-run, and prints "status <status> steps <n>" (exit 0) or the error (exit 1).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "saelab/core/error.hpp"
#include "test_data.hpp"

namespace {
class Sleep : public saelab::TrainerCallback {
 public:
  explicit Sleep(int ms) : ms_(ms) {}
  void on_metrics(const saelab::StepMetrics&, saelab::SaeArchitecture&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
  }

 private:
  int ms_;
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: trainer_child <run_dir> fresh|resume [slow_ms]\n");
    return 2;
  }
  try {
    saelab::test::RunSpec spec = saelab::test::small_run_in(argv[1]);
    if (argc > 3) spec.callbacks.push_back(std::make_shared<Sleep>(std::atoi(argv[3])));
    saelab::RunOptions opts;
    opts.resume = std::string(argv[2]) == "resume";
    saelab::test::RunOutcome out = saelab::test::train(spec, opts);
    std::printf("status %s steps %lld\n", out.result.status.c_str(),
                static_cast<long long>(out.result.steps));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trainer_child: %s\n", e.what());
    return 1;
  }
}
