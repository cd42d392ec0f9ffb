#pragma once
// How this process was launched. torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
// MASTER_PORT for every worker; a Slurm srun script or a plain shell loop can set the same five.
// Under torchrun (TORCHELASTIC_USE_AGENT_STORE=True) the launcher's agent already hosts the
// rendezvous store at MASTER_ADDR:MASTER_PORT and every worker connects to it as a client;
// otherwise rank 0 hosts it, as torch.distributed's env:// rendezvous does.
#include <functional>
#include <optional>
#include <string>

#include "saelab/core/export.hpp"

namespace saelab::dist {

struct SAELAB_API LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // ranks on this host (LOCAL_WORLD_SIZE; torchrun sets it)
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;  // the launcher hosts the store (torchrun)
  int restart_count = 0;     // TORCHELASTIC_RESTART_COUNT: keys of an earlier attempt are not reused

  bool distributed() const { return world_size > 1; }
  std::string describe() const;  // "rank 1 of 2 (local rank 1), store 10.0.0.1:29500"
};

using GetEnv = std::function<const char*(const char*)>;

// nullopt when none of RANK/WORLD_SIZE is set (a plain single-process run). Throws ConfigError
// naming the variable when one is set without the others, is not an integer, or is out of range.
SAELAB_API std::optional<LaunchEnv> launch_env(const GetEnv& getenv);
SAELAB_API std::optional<LaunchEnv> launch_env();  // from this process's environment

}  // namespace saelab::dist
