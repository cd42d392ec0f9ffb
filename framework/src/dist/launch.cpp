#include "saelab/dist/launch.hpp"

#include <cstdlib>

#include "saelab/core/error.hpp"
#include "saelab/core/numbers.hpp"

namespace saelab::dist {

namespace {

constexpr const char* kHowToLaunch =
    "Launch with torchrun --no_python --nproc_per_node P saelab ... (newer torchrun also spells them "
    "--no-python --nproc-per-node), or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process";

int int_variable(const GetEnv& getenv, const char* name, long lo, long hi, std::optional<int> fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') {
    SAELAB_CHECK(fallback.has_value(), ConfigError, "distributed launch: ", name,
                 " is not set, while the other launch variables say this process is one rank of several. ",
                 kHowToLaunch);
    return *fallback;
  }
  const std::optional<long long> n = parse_integer(v);
  SAELAB_CHECK(n && *n >= lo && *n <= hi, ConfigError, "distributed launch: ", name, "='", v,
               "' is not an integer in [", lo, ", ", hi, "]. ", kHowToLaunch);
  return static_cast<int>(*n);
}

}  // namespace

std::string LaunchEnv::describe() const {
  return cat("rank ", rank, " of ", world_size, " (local rank ", local_rank, "), store ", master_addr, ":",
             master_port, agent_store ? " (the launcher's)" : (rank == 0 ? " (hosted here)" : ""));
}

std::optional<LaunchEnv> launch_env(const GetEnv& getenv) {
  const char* rank = getenv("RANK");
  const char* world = getenv("WORLD_SIZE");
  if ((rank == nullptr || *rank == '\0') && (world == nullptr || *world == '\0')) return std::nullopt;
  LaunchEnv e;
  e.world_size = int_variable(getenv, "WORLD_SIZE", 1, 1 << 20, std::nullopt);
  e.rank = int_variable(getenv, "RANK", 0, e.world_size - 1, std::nullopt);
  e.local_rank = int_variable(getenv, "LOCAL_RANK", 0, 1 << 20, e.rank);
  e.local_world_size = int_variable(getenv, "LOCAL_WORLD_SIZE", 1, 1 << 20, 1);
  e.restart_count = int_variable(getenv, "TORCHELASTIC_RESTART_COUNT", 0, 1 << 20, 0);
  if (!e.distributed()) return e;
  const char* addr = getenv("MASTER_ADDR");
  SAELAB_CHECK(addr != nullptr && *addr != '\0', ConfigError, "distributed launch: WORLD_SIZE=", e.world_size,
               " but MASTER_ADDR is not set; it names the host of rank 0 (or of the launcher's store). ",
               kHowToLaunch);
  e.master_addr = addr;
  e.master_port = int_variable(getenv, "MASTER_PORT", 1, 65535, std::nullopt);
  const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent != nullptr &&
                  (std::string(agent) == "True" || std::string(agent) == "true" || std::string(agent) == "1");
  return e;
}

std::optional<LaunchEnv> launch_env() {
  return launch_env([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace saelab::dist
