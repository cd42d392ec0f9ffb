// c10d behind saelab::dist::ProcessGroup. Gloo's headers come from libgloo-dev; USE_C10D_GLOO
// is what LibTorch itself was built with (its ProcessGroupGloo.hpp is empty without it).
#define USE_C10D_GLOO 1
#include "saelab/dist/process_group.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <thread>

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SAELAB_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "saelab/core/log.hpp"

namespace saelab::dist {

namespace {

// c10::Error's what() carries a C++ backtrace; users need the message.
std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices() {
  // GLOO_SOCKET_IFNAME is torch.distributed's variable: "eth0" or "eth0,eth1".
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  if (const char* ifs = std::getenv("GLOO_SOCKET_IFNAME"); ifs != nullptr && *ifs != '\0') {
    std::stringstream ss(ifs);
    for (std::string name; std::getline(ss, name, ',');)
      if (!name.empty()) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  } else {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return devices;
}

std::string resolve_backend(const std::string& requested, torch::Device device) {
  const std::string b = requested == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : requested;
  SAELAB_CHECK(b == "gloo" || b == "nccl", ConfigError, "distributed.backend is '", requested,
               "'; allowed: auto, gloo, nccl");
  SAELAB_CHECK(b != "nccl" || device.is_cuda(), ConfigError, "distributed.backend is nccl but the device is ",
               device.str(), "; NCCL reduces CUDA tensors only. Use gloo on CPU, or set device: cuda");
#ifndef SAELAB_WITH_NCCL
  SAELAB_CHECK(b != "nccl", ConfigError,
               "distributed.backend nccl: this saelab was built without NCCL (SAELAB_WITH_NCCL=OFF, as "
               "it must be against a CPU-only LibTorch such as Debian's). Rebuild with "
               "-DSAELAB_WITH_NCCL=ON against a CUDA LibTorch, or use distributed.backend: gloo");
#endif
  return b;
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Min:
      return c10d::ReduceOp::MIN;
    case ReduceOp::Max:
      return c10d::ReduceOp::MAX;
    default:
      return c10d::ReduceOp::SUM;
  }
}

}  // namespace

struct ProcessGroup::Impl {
  LaunchEnv env;
  GroupOptions opts;
  std::string backend;
  torch::Device device = torch::kCPU;  // where the backend's tensors must live (CUDA for NCCL)
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int fault_round = 0;

  // The ranks that do not answer a roll call in the store, as words.
  std::string lost_ranks() {
    const std::string round = cat("saelab/rollcall/", ++fault_round, "/");
    try {
      store->set(round + std::to_string(env.rank), std::vector<std::uint8_t>{1});
      const auto deadline = std::chrono::steady_clock::now() +
                            std::min<std::chrono::milliseconds>(opts.timeout, std::chrono::seconds(5));
      for (;;) {
        std::vector<int> missing;
        for (int r = 0; r < env.world_size; ++r)
          if (!store->check({round + std::to_string(r)})) missing.push_back(r);
        if (missing.empty()) return "";
        if (std::chrono::steady_clock::now() > deadline) {
          std::string names;
          for (int r : missing) names += cat(names.empty() ? "" : ", ", r);
          return cat(missing.size() == 1 ? "rank " : "ranks ", names, missing.size() == 1 ? " is" : " are",
                     " lost (no answer to a roll call)");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    } catch (const std::exception&) {
      return env.agent_store ? cat("the launcher's rendezvous store at ", env.master_addr, ":",
                                   env.master_port, " no longer answers (the launcher is gone)")
                             : cat("rank 0 is lost (it hosted the rendezvous store at ", env.master_addr, ":",
                                   env.master_port, ", which no longer answers)");
    }
  }

  [[noreturn]] void fail(const std::string& what, const std::exception& e) {
    const std::string lost = lost_ranks();
    throw DistributedError(cat(what, " failed on rank ", env.rank, " of ", env.world_size, ": ",
                               lost.empty()
                                   ? cat("every rank answered, so it timed out (distributed.timeout_s = ",
                                         opts.timeout.count() / 1000.0, ")")
                                   : lost,
                               ". ", backend, " said: ", first_line(message_of(e))));
  }

  template <class Fn>
  auto guarded(const std::string& what, Fn&& fn) {
    try {
      return fn();
    } catch (const DistributedError&) {
      throw;
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  // NCCL reduces CUDA tensors only: a CPU tensor travels through the group's device.
  torch::Tensor staged(const torch::Tensor& t) const {
    return backend == "nccl" && t.device() != device ? t.to(device) : t;
  }
  static void unstage(torch::Tensor& t, const torch::Tensor& s) {
    if (!s.is_same(t)) t.copy_(s);
  }

  void run(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work) {
    guarded(what, [&] { return work->wait(opts.timeout); });
  }
};

struct PendingReduce::State {
  ProcessGroup::Impl* group = nullptr;
  std::string what;
  c10::intrusive_ptr<c10d::Work> work;
  bool done = false;
  ~State() {
    if (done || !work) return;
    try {
      work->wait(group->opts.timeout);
    } catch (...) {  // the error was or will be reported by the owner's wait()
    }
  }
};

void PendingReduce::wait() {
  if (!state_ || state_->done) return;
  state_->done = true;
  state_->group->run(state_->what, state_->work);
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

std::shared_ptr<ProcessGroup> ProcessGroup::connect(const LaunchEnv& env, const GroupOptions& opts,
                                                    torch::Device device) {
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->opts = opts;
  impl->backend = resolve_backend(opts.backend, device);
  impl->device = device;
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = env.rank == 0 && !env.agent_store;
  so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<std::size_t>(env.world_size);
  so.waitWorkers = !env.agent_store;
  so.timeout = opts.timeout;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    impl->store = c10::make_intrusive<c10d::PrefixStore>(cat("saelab/attempt_", env.restart_count), tcp);
    if (impl->backend == "gloo") {
      auto go = c10d::ProcessGroupGloo::Options::create(opts.timeout);
      go->devices = gloo_devices();
      go->threads = 2;
      impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, go);
    } else {
#ifdef SAELAB_WITH_NCCL
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = opts.timeout;
      impl->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, no);
#endif
    }
  } catch (const std::exception& e) {
    throw DistributedError(cat("could not join the process group as ", env.describe(), " within ",
                               opts.timeout.count() / 1000.0,
                               " s (distributed.timeout_s): ", first_line(message_of(e)),
                               ". Check that every rank was started with the same MASTER_ADDR, MASTER_PORT "
                               "and WORLD_SIZE, that the port is free on rank 0's host, and, across "
                               "hosts, that GLOO_SOCKET_IFNAME names the interface to use"));
  }
  log::info("distributed: ", env.describe(), ", backend ", impl->backend);
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

int ProcessGroup::rank() const {
  return impl_->env.rank;
}
int ProcessGroup::size() const {
  return impl_->env.world_size;
}
const std::string& ProcessGroup::backend() const {
  return impl_->backend;
}
const LaunchEnv& ProcessGroup::env() const {
  return impl_->env;
}
std::chrono::milliseconds ProcessGroup::timeout() const {
  return impl_->opts.timeout;
}

void ProcessGroup::all_reduce(torch::Tensor& t, ReduceOp op, const std::string& what) {
  std::vector<torch::Tensor> ts{impl_->staged(t)};
  c10d::AllreduceOptions o;
  o.reduceOp = to_c10d(op);
  impl_->run(what, impl_->guarded(what, [&] { return impl_->pg->allreduce(ts, o); }));
  Impl::unstage(t, ts[0]);
}

PendingReduce ProcessGroup::all_reduce_async(torch::Tensor& t, const std::string& what) {
  SAELAB_CHECK(impl_->staged(t).is_same(t), Error, what, ": an asynchronous all-reduce needs its tensor on ",
               impl_->device.str(), " (the ", impl_->backend, " backend's device), not ", t.device().str());
  std::vector<torch::Tensor> ts{t};
  auto s = std::make_shared<PendingReduce::State>();
  s->group = impl_.get();
  s->what = what;
  s->work = impl_->guarded(what, [&] { return impl_->pg->allreduce(ts); });
  return PendingReduce(std::move(s));
}

torch::Tensor ProcessGroup::all_gather(const torch::Tensor& t, const std::string& what) {
  std::vector<torch::Tensor> in{impl_->staged(t.contiguous())};
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < size(); ++r) out[0].push_back(torch::empty_like(in[0]));
  impl_->run(what, impl_->guarded(what, [&] { return impl_->pg->allgather(out, in); }));
  return torch::cat(out[0], 0).to(t.device());
}

void ProcessGroup::broadcast(torch::Tensor& t, int root, const std::string& what) {
  std::vector<torch::Tensor> ts{impl_->staged(t)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  impl_->run(what, impl_->guarded(what, [&] { return impl_->pg->broadcast(ts, o); }));
  Impl::unstage(t, ts[0]);
}

void ProcessGroup::barrier(const std::string& what) {
  impl_->run(what, impl_->guarded(what, [&] { return impl_->pg->barrier(); }));
}

void check_same_on_all_ranks(ProcessGroup& g, double value, const std::string& what) {
  const torch::Tensor all = g.all_gather(torch::tensor({value}, torch::kFloat64), what);
  const auto exact = [](double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
  };
  const double ref = all[0].item<double>();
  std::string bad;
  for (int r = 1; r < g.size(); ++r) {
    const double v = all[r].item<double>();
    if (!(v == ref)) bad += cat(bad.empty() ? "" : "; ", "rank ", r, " has ", exact(v));
  }
  SAELAB_CHECK(bad.empty(), DistributedError, what, ": the ranks disagree: rank 0 has ", exact(ref), " but ",
               bad);
}

}  // namespace saelab::dist
