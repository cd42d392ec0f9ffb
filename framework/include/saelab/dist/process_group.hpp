#pragma once
// The process group of a data-parallel run: PyTorch's c10d (TCPStore rendezvous, ProcessGroupGloo
// on CPU, ProcessGroupNCCL for CUDA tensors in builds with SAELAB_WITH_NCCL), behind a small
// interface so that no saelab header pulls in c10d or Gloo.
//
// Every collective must be called by every rank in the same order. A collective that fails (a
// peer died: its connection closed; or nothing came within `timeout`) throws DistributedError,
// which names the lost ranks: the survivors take a roll call in the rendezvous store, and a store
// that no longer answers means its host (rank 0, unless the launcher hosts it) is gone.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/core/export.hpp"
#include "saelab/dist/launch.hpp"

namespace saelab::dist {

// A collective failed: a rank was lost or timed out. Exit code 1.
class SAELAB_API DistributedError : public Error {
 public:
  using Error::Error;
};

struct SAELAB_API GroupOptions {
  std::string backend = "auto";  // auto (nccl for a CUDA device, else gloo) | gloo | nccl
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

enum class ReduceOp { Sum, Min, Max };

// An all-reduce in flight. wait() blocks until the tensor holds the result (or throws
// DistributedError). Waiting twice is allowed; destroying an unwaited one waits.
class SAELAB_API PendingReduce {
 public:
  struct State;
  PendingReduce() = default;
  explicit PendingReduce(std::shared_ptr<State> s) : state_(std::move(s)) {}
  void wait();
  bool valid() const { return state_ != nullptr; }

 private:
  std::shared_ptr<State> state_;
};

class SAELAB_API ProcessGroup {
 public:
  // Rendezvous with the other ranks of `env` (blocks until all WORLD_SIZE have joined or
  // `opts.timeout` passes) and builds the backend for `device`.
  static std::shared_ptr<ProcessGroup> connect(const LaunchEnv& env, const GroupOptions& opts,
                                               torch::Device device);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  bool is_main() const { return rank() == 0; }
  const std::string& backend() const;  // "gloo" | "nccl"
  const LaunchEnv& env() const;
  std::chrono::milliseconds timeout() const;

  // In place; `what` names the operation in errors ("the gradient all-reduce of step 12").
  void all_reduce(torch::Tensor& t, ReduceOp op, const std::string& what);
  PendingReduce all_reduce_async(torch::Tensor& t, const std::string& what);  // sum
  // t [n, ...] on every rank -> [size * n, ...], rank 0's rows first.
  torch::Tensor all_gather(const torch::Tensor& t, const std::string& what);
  void broadcast(torch::Tensor& t, int root, const std::string& what);
  void barrier(const std::string& what);

  struct Impl;

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One number every rank holds, checked equal on all: the ranks that differ from rank 0 are named.
// Throws DistributedError("<what>: rank 1 has 3.25 but rank 0 has 3.5").
SAELAB_API void check_same_on_all_ranks(ProcessGroup& g, double value, const std::string& what);

}  // namespace saelab::dist
