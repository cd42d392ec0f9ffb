// Data parallelism in one process: ranks are threads, each with its own c10d process group over
// loopback (Gloo), so the collectives, the gradient buckets, the errors and the trainer's
// reductions are checked against hand-computed values and against one process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <future>
#include <thread>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "saelab/data/memory_reader.hpp"
#include "saelab/dist/grad_reducer.hpp"
#include "saelab/dist/launch.hpp"
#include "saelab/dist/process_group.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {

using dist::DistributedError;
using dist::ProcessGroup;

// A port nothing listens on now (the kernel's choice), for one test's rendezvous.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Runs fn(group) on `world` threads, one rank each; rethrows the first failure.
void on_ranks(int world, const std::function<void(ProcessGroup&)>& fn, double timeout_s = 30) {
  const int port = free_port();
  std::vector<std::future<void>> done;
  for (int r = 0; r < world; ++r)
    done.push_back(std::async(std::launch::async, [=] {
      at::set_num_threads(1);
      dist::LaunchEnv env;
      env.rank = r;
      env.world_size = world;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      dist::GroupOptions go;
      go.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
      auto g = ProcessGroup::connect(env, go, torch::kCPU);
      fn(*g);
    }));
  for (auto& f : done) f.get();
}

std::map<std::string, std::string> vars(std::map<std::string, std::string> v) {
  return v;
}
dist::GetEnv getenv_of(const std::map<std::string, std::string>& v) {
  return [v](const char* name) -> const char* {
    auto it = v.find(name);
    return it == v.end() ? nullptr : it->second.c_str();
  };
}

TEST(LaunchEnv, NoVariablesIsASingleProcess) {
  EXPECT_FALSE(dist::launch_env(getenv_of({})).has_value());
}

TEST(LaunchEnv, ReadsTorchrunsVariables) {
  const auto e = dist::launch_env(getenv_of(vars({{"RANK", "3"},
                                                  {"WORLD_SIZE", "8"},
                                                  {"LOCAL_RANK", "1"},
                                                  {"LOCAL_WORLD_SIZE", "2"},
                                                  {"MASTER_ADDR", "10.0.0.7"},
                                                  {"MASTER_PORT", "29500"},
                                                  {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                  {"TORCHELASTIC_RESTART_COUNT", "2"}})));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 3);
  EXPECT_EQ(e->world_size, 8);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->local_world_size, 2);
  EXPECT_EQ(e->master_addr, "10.0.0.7");
  EXPECT_EQ(e->master_port, 29500);
  EXPECT_TRUE(e->agent_store);
  EXPECT_EQ(e->restart_count, 2);
  EXPECT_TRUE(e->distributed());
}

void expect_config_error(const std::map<std::string, std::string>& v, const std::string& needle) {
  try {
    dist::launch_env(getenv_of(v));
    ADD_FAILURE() << "no error for a launch environment lacking " << needle;
  } catch (const ConfigError& e) {
    std::printf("  error: %s\n", e.what());
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LaunchEnv, BadVariablesAreNamed) {
  expect_config_error({{"RANK", "0"}}, "WORLD_SIZE is not set");
  expect_config_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}, "MASTER_ADDR is not set");
  expect_config_error({{"RANK", "zero"}, {"WORLD_SIZE", "2"}}, "RANK='zero' is not an integer in [0, 1]");
  expect_config_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK='2'");
  expect_config_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}},
                      "MASTER_PORT='70000'");
}

TEST(ProcessGroup, CollectivesGiveHandComputedResults) {
  on_ranks(2, [](ProcessGroup& g) {
    torch::Tensor t = torch::tensor({1.0 + g.rank(), 10.0 * (g.rank() + 1)});
    g.all_reduce(t, dist::ReduceOp::Sum, "sum");
    EXPECT_TRUE(t.equal(torch::tensor({3.0, 30.0})));
    torch::Tensor m = torch::tensor({1.0 + g.rank()});
    g.all_reduce(m, dist::ReduceOp::Min, "min");
    EXPECT_EQ(m.item<double>(), 1.0);
    const torch::Tensor all = g.all_gather(torch::full({2, 1}, double(g.rank())), "gather");
    EXPECT_TRUE(all.flatten().equal(torch::tensor({0.0, 0.0, 1.0, 1.0})));
    torch::Tensor b = torch::tensor({g.rank() == 1 ? 7.0 : 0.0});
    g.broadcast(b, 1, "broadcast");
    EXPECT_EQ(b.item<double>(), 7.0);
  });
}

TEST(ProcessGroup, DisagreementNamesTheRank) {
  std::vector<std::string> errors(2);
  on_ranks(2, [&](ProcessGroup& g) {
    try {
      dist::check_same_on_all_ranks(g, g.rank() == 1 ? 3.25 : 3.5, "the test value");
    } catch (const DistributedError& e) {
      errors[g.rank()] = e.what();
    }
  });
  std::printf("  error: %s\n", errors[0].c_str());
  for (const auto& e : errors)
    EXPECT_NE(e.find("rank 0 has 3.5 but rank 1 has 3.25"), std::string::npos) << e;
}

TEST(ProcessGroup, LostRankIsNamed) {
  std::string error;
  on_ranks(
      2,
      [&](ProcessGroup& g) {
        g.barrier("the start");
        if (g.rank() == 1) return;  // rank 1 "dies": its group (sockets, store client) is destroyed
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        torch::Tensor t = torch::ones({4});
        try {
          g.all_reduce(t, dist::ReduceOp::Sum, "the gradient all-reduce of step 7");
        } catch (const DistributedError& e) {
          error = e.what();
        }
      },
      20);
  std::printf("  error: %s\n", error.c_str());
  EXPECT_NE(error.find("the gradient all-reduce of step 7 failed on rank 0 of 2: rank 1 is lost"),
            std::string::npos)
      << error;
}

// Three parameters, one bucket each at this bucket size; rank r's gradient of parameter k is
// (k + 1) · (r + 1) · ones, except that rank 1 computes none for parameter 0.
std::vector<torch::Tensor> reduce_grads(ProcessGroup& g, bool overlap) {
  std::vector<torch::Tensor> params{torch::zeros({3}, torch::requires_grad()),
                                    torch::zeros({2, 2}, torch::requires_grad()),
                                    torch::zeros({5}, torch::requires_grad())};
  dist::GradientReducer reducer(g, params, /*bucket_bytes=*/20, overlap);
  EXPECT_EQ(reducer.stats().buckets, 3);
  EXPECT_EQ(reducer.stats().bytes_per_step, (3 + 4 + 5) * 4);
  reducer.prepare("the test's all-reduce");
  torch::Tensor loss = torch::zeros({});
  for (std::size_t k = 0; k < params.size(); ++k)
    if (!(g.rank() == 1 && k == 0)) loss = loss + params[k].sum() * double((k + 1) * (g.rank() + 1));
  loss.backward();
  reducer.finish();
  std::vector<torch::Tensor> grads;
  for (auto& p : params) grads.push_back(p.grad().clone());
  return grads;
}

TEST(GradientReducer, MeanOverRanksWithAndWithoutOverlap) {
  on_ranks(2, [](ProcessGroup& g) {
    const auto with = reduce_grads(g, true), without = reduce_grads(g, false);
    // mean over ranks of (k + 1)(r + 1): (k + 1) · 1.5, and parameter 0: (1 + 0) / 2.
    EXPECT_TRUE(with[0].equal(torch::full({3}, 0.5)));
    EXPECT_TRUE(with[1].equal(torch::full({2, 2}, 3.0)));
    EXPECT_TRUE(with[2].equal(torch::full({5}, 4.5)));
    for (std::size_t k = 0; k < with.size(); ++k) EXPECT_TRUE(with[k].equal(without[k]));
  });
}

// ---- the trainer on two ranks against one process ---------------------------------------------

struct TrainedWeights {
  std::vector<torch::Tensor> params;
  std::vector<StepMetrics> metrics;
};

class Recorder : public TrainerCallback {
 public:
  explicit Recorder(std::vector<StepMetrics>* out) : out_(out) {}
  void on_metrics(const StepMetrics& m, SaeArchitecture&) override { out_->push_back(m); }

 private:
  std::vector<StepMetrics>* out_;
};

using SaeFactory = std::function<std::shared_ptr<SaeArchitecture>(const std::shared_ptr<ProcessGroup>&)>;

std::shared_ptr<SaeArchitecture> tiny_relu(const std::shared_ptr<ProcessGroup>&) {
  return std::make_shared<test::TinySae>(16, 48, 0, 5);
}

std::shared_ptr<SaeArchitecture> batchtopk_plugin(const std::shared_ptr<ProcessGroup>& g) {
  PluginContext ctx;
  ctx.seed = 5;
  ctx.group = g;
  return test::plugins().create<SaeArchitecture>(
      "batchtopk", test::plugin_options("sae", "batchtopk", {{"d_in", 16}, {"d_sae", 48}, {"k", 4.0}}), ctx);
}

using LossFactory = std::function<std::vector<std::shared_ptr<Loss>>()>;

std::vector<std::shared_ptr<Loss>> mse_l1() {
  return {std::make_shared<test::MseLoss>(), std::make_shared<test::L1Loss>(0.5)};
}

// p anneals from 1 to 0.5 in 4 values at steps 10, 20, 30, 40 (of 40), the coefficient adapting
// from the last 3 steps each time.
std::vector<std::shared_ptr<Loss>> mse_lp_anneal() {
  const test::Values v{{"coefficient", 0.5},
                       {"warmup_fraction", 0.0},
                       {"p_start", 1.0},
                       {"p_end", 0.5},
                       {"anneal_start", 0.25},
                       {"anneal_end", 1.0},
                       {"updates", std::int64_t(4)},
                       {"queue_length", std::int64_t(3)}};
  return {std::make_shared<test::MseLoss>(),
          test::plugins().create<Loss>("lp_anneal", test::plugin_options("loss", "lp_anneal", v), {})};
}

struct Interruption {
  std::int64_t stop_at = 0;  // > 0: stop (and checkpoint) after this step
  bool resume = false;
};

TrainedWeights train_tiny(const std::filesystem::path& dir, std::int64_t micro_batches,
                          const std::shared_ptr<ProcessGroup>& owner = nullptr,
                          const SaeFactory& make = tiny_relu, Interruption stop = {},
                          const LossFactory& losses = mse_l1) {
  static const torch::Tensor data = torch::randn({2048, 16}, at::TensorOptions().dtype(torch::kFloat32));
  TrainedWeights out;
  TrainerConfig tc;
  tc.batch_size = 128;
  tc.micro_batches = micro_batches;
  tc.training_tokens = 128 * 40;
  tc.lr = 3e-3;
  tc.lr_warmup_steps = 5;
  tc.metrics_every_steps = 5;
  tc.resample_steps = {20};
  tc.resample_inputs = 256;
  tc.dead_window_tokens = 128 * 3;
  TrainerInputs in;
  in.sae = make(owner);
  in.losses = losses();
  in.callbacks = {std::make_shared<Recorder>(&out.metrics)};
  if (stop.stop_at > 0) in.callbacks.push_back(std::make_shared<test::StopAt>(stop.stop_at));
  ReaderOptions ro;
  ro.batch_rows = tc.batch_size;
  ro.seed = 11;
  TensorActivationReader reader(data, ro);
  in.reader = &reader;
  in.run_dir = dir;
  in.parallel.group = owner;
  in.parallel.check_every_steps = 10;
  std::shared_ptr<SaeArchitecture> sae = in.sae;
  Trainer t(tc, std::move(in));
  t.on_warning([](const std::string&) {});
  RunOptions ro2;
  ro2.handle_signals = false;
  ro2.save_sae = false;
  ro2.resume = stop.resume;
  t.run(ro2);
  for (const auto& [name, v] : sae->state()) out.params.push_back(v.clone());
  return out;
}

// Two thread-ranks training with `make`, each rank's result.
std::vector<TrainedWeights> train_on_two_ranks(const std::filesystem::path& dir, const SaeFactory& make,
                                               Interruption stop = {}, const LossFactory& losses = mse_l1) {
  std::vector<TrainedWeights> ranks(2);
  const int port = free_port();
  std::vector<std::future<void>> done;
  for (int r = 0; r < 2; ++r)
    done.push_back(std::async(std::launch::async, [&, r] {
      at::set_num_threads(1);
      dist::LaunchEnv env{r, 2, r, 2, "127.0.0.1", port};
      auto g = ProcessGroup::connect(env, {}, torch::kCPU);
      ranks[r] = train_tiny(dir, 1, g, make, stop, losses);
    }));
  for (auto& f : done) f.get();
  return ranks;
}

// The largest relative difference of a logged metric between two runs (timings aside).
double max_metric_difference(const TrainedWeights& a, const TrainedWeights& b) {
  double worst = 0;
  EXPECT_EQ(a.metrics.size(), b.metrics.size());
  for (std::size_t i = 0; i < std::min(a.metrics.size(), b.metrics.size()); ++i)
    for (const auto& [k, v] : a.metrics[i].values) {
      if (k == "tokens_per_s" || k == "elapsed_s" || k == "eta_s") continue;
      {
        const double d = std::abs(b.metrics[i].values.at(k) - v) / std::max(1e-12, std::abs(v));
        worst = std::max(worst, d);
      }
    }
  return worst;
}

TEST(DataParallelTrainer, TwoRanksEqualTwoMicroBatchesBitwise) {
  at::set_num_threads(1);
  test::TempDir tmp;
  const TrainedWeights micro = train_tiny(tmp / "micro", 2);
  const TrainedWeights whole = train_tiny(tmp / "whole", 1);
  const std::vector<TrainedWeights> ranks = train_on_two_ranks(tmp / "ranks", tiny_relu);
  for (const auto& r : ranks) {
    EXPECT_EQ(max_metric_difference(r, micro), 0.0);
    ASSERT_EQ(r.params.size(), micro.params.size());
    for (std::size_t i = 0; i < r.params.size(); ++i)
      EXPECT_TRUE(r.params[i].equal(micro.params[i]))
          << "tensor " << i << ": max |diff| " << (r.params[i] - micro.params[i]).abs().max().item<double>();
  }
  const double worst = max_metric_difference(ranks[0], whole);
  std::printf(
      "  2 ranks vs 1 process with 2 micro-batches: every parameter and logged metric equal (%zu steps)\n",
      micro.metrics.size());
  std::printf("  2 ranks vs 1 process with the whole batch: max relative metric difference %.3g\n", worst);
  EXPECT_LT(worst, 1e-3);
}

TEST(DataParallelTrainer, PAnnealingAdaptsToTheGlobalBatch) {
  // p and the coefficient move once per step from the whole batch's Lp: two ranks equal two
  // micro-batches bit for bit (p, coefficient and loss are logged metrics), and one whole batch
  // to rounding.
  at::set_num_threads(1);
  test::TempDir tmp;
  const TrainedWeights whole = train_tiny(tmp / "whole", 1, nullptr, tiny_relu, {}, mse_lp_anneal);
  const TrainedWeights micro = train_tiny(tmp / "micro", 2, nullptr, tiny_relu, {}, mse_lp_anneal);
  const std::vector<TrainedWeights> ranks = train_on_two_ranks(tmp / "ranks", tiny_relu, {}, mse_lp_anneal);
  ASSERT_FALSE(whole.metrics.empty());
  for (const auto& r : ranks) {
    EXPECT_EQ(max_metric_difference(r, micro), 0.0);
    for (std::size_t i = 0; i < r.params.size(); ++i) EXPECT_TRUE(r.params[i].equal(micro.params[i])) << i;
  }
  std::vector<double> ps;
  for (const auto& m : whole.metrics) ps.push_back(m.values.at("loss.lp_anneal.p"));
  for (std::size_t i = 0; i < whole.metrics.size(); ++i)
    EXPECT_EQ(micro.metrics[i].values.at("loss.lp_anneal.p"), ps[i]) << "step " << whole.metrics[i].step;
  EXPECT_EQ(ps.front(), 1.0);
  EXPECT_NEAR(ps.back(), 0.5 + 0.5 / 3, 1e-12);  // the update at step 40 is past the end
  const double vs_whole = max_metric_difference(ranks[0], whole);
  std::printf(
      "  lp_anneal, 2 ranks = 2 micro-batches bitwise; vs the whole batch: max relative metric "
      "difference %.3g (p %.3f -> %.3f, coefficient %.4f -> %.4f)\n",
      vs_whole, ps.front(), ps.back(), whole.metrics.front().values.at("loss.lp_anneal.coefficient"),
      whole.metrics.back().values.at("loss.lp_anneal.coefficient"));
  EXPECT_LT(vs_whole, 1e-3);
}

TEST(DataParallelTrainer, BatchTopkSelectsOverTheGlobalBatch) {
  at::set_num_threads(1);
  test::TempDir tmp;
  const TrainedWeights whole = train_tiny(tmp / "whole", 1, nullptr, batchtopk_plugin);
  const TrainedWeights micro = train_tiny(tmp / "micro", 2, nullptr, batchtopk_plugin);
  const std::vector<TrainedWeights> ranks = train_on_two_ranks(tmp / "ranks", batchtopk_plugin);
  // The ranks' thresholds agree (the trainer's checksum covers buffers) and equal one process's.
  const double vs_whole = max_metric_difference(ranks[0], whole);
  const double micro_vs_whole = max_metric_difference(micro, whole);
  std::printf("  BatchTopK, 2 ranks vs 1 process with the whole batch: max relative metric difference %.3g\n",
              vs_whole);
  std::printf("  BatchTopK, 1 process selecting per half batch vs the whole batch: %.3g\n", micro_vs_whole);
  EXPECT_LT(vs_whole, 1e-3);
  EXPECT_GT(micro_vs_whole, 10 * vs_whole);  // selecting per half is another run; the ranks' is not
}

TEST(DataParallelTrainer, ResumesOnAnotherWorldSize) {
  // Two ranks checkpoint at step 20 (a callback stops them there); one process resumes to the end.
  at::set_num_threads(1);
  test::TempDir tmp;
  const TrainedWeights whole = train_tiny(tmp / "whole", 1);
  train_on_two_ranks(tmp / "resharded", tiny_relu, Interruption{20, false});
  const TrainedWeights resumed = train_tiny(tmp / "resharded", 1, nullptr, tiny_relu, Interruption{0, true});
  ASSERT_FALSE(resumed.metrics.empty());
  EXPECT_EQ(resumed.metrics.front().step, 25);
  double worst = 0;
  for (std::size_t i = 0; i < whole.params.size(); ++i)
    worst = std::max(worst, (whole.params[i] - resumed.params[i]).abs().max().item<double>());
  std::printf(
      "  2 ranks to step 20, then 1 process to step 40, against 1 process throughout: max |weight diff| "
      "%.3g\n",
      worst);
  EXPECT_LT(worst, 1e-4);
}

TEST(DataParallelTrainer, DivergedRanksAreCaught) {
  // Rank 1 starts from another initialisation: the checksum at the start names the disagreement.
  at::set_num_threads(1);
  test::TempDir tmp;
  const auto mismatched = [](const std::shared_ptr<ProcessGroup>& g) -> std::shared_ptr<SaeArchitecture> {
    return std::make_shared<test::TinySae>(16, 48, 0, g && g->rank() == 1 ? 6 : 5);
  };
  try {
    train_on_two_ranks(tmp / "diverged", mismatched);
    ADD_FAILURE() << "two ranks with different parameters trained without an error";
  } catch (const DistributedError& e) {
    std::printf("  error: %s\n", e.what());
    EXPECT_NE(std::string(e.what()).find("the parameter checksum at the start"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 1 has"), std::string::npos) << e.what();
  }
}

TEST(DataParallelTrainer, RefusesABatchTheRanksCannotSplit) {
  on_ranks(2, [](ProcessGroup& g) {
    TrainerConfig tc;
    tc.batch_size = 129;
    tc.training_tokens = 129 * 4;
    TrainerInputs in;
    in.sae = std::make_shared<test::TinySae>(4, 8, 0, 5);
    in.losses = {std::make_shared<test::MseLoss>()};
    TensorActivationReader reader(torch::randn({300, 4}), ReaderOptions{0, 1 << 19, 129});
    in.reader = &reader;
    in.run_dir = "unused";
    in.parallel.group = std::shared_ptr<ProcessGroup>(&g, [](ProcessGroup*) {});
    try {
      Trainer t(tc, std::move(in));
      ADD_FAILURE() << "a batch of 129 rows was accepted on 2 ranks";
    } catch (const ConfigError& e) {
      if (g.rank() == 0) std::printf("  error: %s\n", e.what());
      EXPECT_NE(std::string(e.what()).find("it must be a multiple of 2"), std::string::npos) << e.what();
    }
  });
}

}  // namespace
}  // namespace saelab
