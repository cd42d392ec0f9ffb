#include "saelab/stages/runner.hpp"

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>

#include "saelab/config/experiment.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/activation_store.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/progress.hpp"
#include "saelab/core/runtime.hpp"
#include "saelab/dist/process_group.hpp"
#include "stages/stages.hpp"

namespace saelab {
namespace fs = std::filesystem;

fs::path StageContext::store_dir() const {
  const std::string& d = options().string("harvest.store_dir");
  return d.empty() ? run_dir / "store" : fs::path(d);
}

std::shared_ptr<ActivationSource> StageContext::source() {
  if (!source_) source_ = registry.create<ActivationSource>(options().plugin("source"), plugin_ctx);
  return source_;
}

std::shared_ptr<ActivationStore> StageContext::store() {
  if (!store_) store_ = registry.create<ActivationStore>(options().plugin("store"), plugin_ctx);
  return store_;
}

namespace {

bool is_run_dir(const fs::path& dir) {
  return fs::exists(dir / "config.resolved.yaml") || fs::exists(dir / "run.json");
}

bool dir_has_entries(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir, ec) && fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
}

std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  for (int line = 1;; ++line) {
    bool ga = static_cast<bool>(std::getline(sa, la)), gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return "";
    if (!ga || !gb || la != lb)
      return cat("first difference at line ", line, " of config.resolved.yaml:\n    was: ", ga ? la : "(end)",
                 "\n    now: ", gb ? lb : "(end)");
  }
}

void check_same_config(const fs::path& dir, const ExperimentConfig& cfg, const RunRequest& req) {
  std::string old = read_file(dir / "config.resolved.yaml", kMaxConfigBytes, "resolved config");
  if (old != cfg.resolved && !req.force)
    throw ConfigError(
        cat("the configuration differs from the one '", dir.string(), "' was created with; ",
            first_difference(old, cfg.resolved),
            "\n  Use a new --out directory, or --force to continue with the new configuration."));
}

// Applies the never-overwrite rule. Returns true when continuing an existing run.
bool prepare_run_dir(const fs::path& dir, const ExperimentConfig& cfg, const RunRequest& req,
                     bool whole_run) {
  if (dir_has_entries(dir)) {
    if (!is_run_dir(dir))
      throw UsageError(cat("output directory '", dir.string(),
                           "' exists and is not a saelab run "
                           "directory; choose another --out (saelab never deletes what it did not write)"));
    if (whole_run && req.overwrite) {
      for (const auto& e : fs::directory_iterator(dir)) fs::remove_all(e.path());
    } else {
      if (whole_run && !req.resume)
        throw UsageError(cat("run directory '", dir.string(),
                             "' already exists; pass --resume to "
                             "continue it, --overwrite to start over, or --out DIR for a new one"));
      check_same_config(dir, cfg, req);
      return true;
    }
  }
  fs::create_directories(dir);
  write_file_atomic(dir / "config.yaml", read_file(cfg.file, kMaxConfigBytes, "experiment file"));
  write_file_atomic(dir / "config.resolved.yaml", cfg.resolved);
  return false;
}

nlohmann::json read_run_json(const fs::path& dir) {
  fs::path p = dir / "run.json";
  if (!fs::exists(p)) return nlohmann::json{{"stages", nlohmann::json::object()}};
  try {
    return nlohmann::json::parse(read_file(p, 16 << 20, "run record"));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat("'", p.string(), "' is not valid JSON (", e.what(),
                          "); it records which stages "
                          "finished. Delete it to rerun every stage."));
  }
}

std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The shared harvest's record, marked with where it came from, so evaluation and the report skip
// the sequences it consumed.
void adopt_shared_harvest(nlohmann::json& record, const RunRequest& req, const fs::path& run_dir) {
  if (req.shared_harvest_run.empty() || record["stages"].contains("harvest")) return;
  const nlohmann::json shared = read_run_json(req.shared_harvest_run);
  if (!shared["stages"].contains("harvest"))
    throw UsageError(cat("the shared harvest in '", req.shared_harvest_run.string(),
                         "' has not finished; run it first (saelab sweep does)"));
  record["stages"]["harvest"] = shared["stages"]["harvest"];
  record["stages"]["harvest"]["shared_from"] = req.shared_harvest_run.string();
  write_file_atomic(run_dir / "run.json", record.dump(2) + "\n");
}

// A data-parallel launch (torchrun, or RANK and WORLD_SIZE set): the process group; else null.
std::shared_ptr<dist::ProcessGroup> join_group(const RunSettings& rs, torch::Device device) {
  const std::optional<dist::LaunchEnv> env = dist::launch_env();
  if (!env || !env->distributed()) return nullptr;
  dist::GroupOptions go;
  go.backend = rs.distributed.backend;
  go.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(rs.distributed.timeout_s * 1000));
  return dist::ProcessGroup::connect(*env, go, device);
}

// Rank 0 prepares the run directory (the never-overwrite rule); the others then check they run
// the same configuration. Returns true when continuing an existing run.
bool prepare_run_dir_on_ranks(dist::ProcessGroup* group, const fs::path& dir, const ExperimentConfig& cfg,
                              const RunRequest& req, bool whole_run) {
  if (!group) return prepare_run_dir(dir, cfg, req, whole_run);
  bool continuing = false;
  if (group->is_main()) continuing = prepare_run_dir(dir, cfg, req, whole_run);
  group->barrier("preparing the run directory (rank 0 failed to; see its error)");
  if (!group->is_main()) {
    SAELAB_CHECK(is_run_dir(dir), UsageError, "rank ", group->rank(), ": the run directory '", dir.string(),
                 "' that rank 0 prepared is not visible here; every rank needs the same run directory "
                 "(a shared file system across hosts)");
    check_same_config(dir, cfg, req);
  }
  return continuing;
}

// Stages that are data-parallel; evaluate and report run on rank 0 alone.
bool runs_on_every_rank(const std::string& stage) {
  return stage == "harvest" || stage == "train";
}

nlohmann::json run_stage(const std::string& stage, StageContext& ctx) {
  if (stage == "harvest") return run_harvest(ctx);
  if (stage == "train") return run_train(ctx);
  if (stage == "evaluate") return run_evaluate(ctx);
  return run_report(ctx);
}

}  // namespace

fs::path run_experiment(const RunRequest& req) {
  const Registry& registry = plugin_registry();
  ExperimentConfig cfg = load_experiment(req.config_file, experiment_schema(), registry, req.overrides);
  RunSettings rs = run_settings(cfg.options);
  std::vector<std::string> stages = req.stages.empty() ? rs.stages : req.stages;
  const bool whole_run = req.stages.empty();
  std::string name = rs.name.empty() ? req.config_file.stem().string() : rs.name;
  fs::path run_dir = req.out_dir.empty() ? fs::path("runs") / name : req.out_dir;

  torch::Device device = resolve_device(rs.device);
  const std::optional<dist::LaunchEnv> launch = dist::launch_env();
  // Ranks sharing a host share its cores unless `threads` says otherwise.
  const int per_host = launch && launch->distributed() ? launch->local_world_size : 1;
  configure_threads(rs.threads > 0
                        ? rs.threads
                        : std::max<std::int64_t>(1, std::thread::hardware_concurrency() / per_host));
  std::shared_ptr<dist::ProcessGroup> group = join_group(rs, device);
  struct CloseLog {
    ~CloseLog() {
      log::set_file({});
      log::set_tag("");
    }
  } close_log;
  if (group) log::set_tag(cat("rank ", group->rank()));
  bool continuing = prepare_run_dir_on_ranks(group.get(), run_dir, cfg, req, whole_run);
  log::set_file(run_dir /
                (group && !group->is_main() ? cat("saelab.rank-", group->rank(), ".log") : "saelab.log"));
  log::info("saelab run '", name, "' in ", run_dir.string(), continuing ? " (continuing)" : "");
  BlasInfo blas = blas_info();
  log::info("device ", device.str(), ", ", at::get_num_threads(), " threads, BLAS ", blas.kind,
            blas.library.empty() ? "" : " (" + blas.library + ")");
  if (blas.slow)
    log::warn(
        "LibTorch is using the reference BLAS, about 10x slower than OpenBLAS; "
        "install it with: sudo apt-get install libopenblas0-pthread");

  StageContext ctx(cfg, registry, req, run_dir, PluginContext{device, rs.seed, run_dir, group});
  ctx.distributed = rs.distributed;
  ctx.resume = req.resume;
  ctx.overwrite = req.overwrite;
  nlohmann::json record = read_run_json(run_dir);
  adopt_shared_harvest(record, req, run_dir);
  for (const auto& stage : stages) {
    if (stage == "harvest" && !req.shared_harvest_run.empty()) {
      log::info("stage harvest: shared, from ", req.shared_harvest_run.string());
      continue;
    }
    if (whole_run && req.resume && record["stages"].contains(stage)) {
      log::info("stage ", stage, ": already complete, skipped (--resume)");
      continue;
    }
    if (group && !group->is_main() && !runs_on_every_rank(stage)) {
      log::info("stage ", stage, ": runs on rank 0 alone");
      continue;
    }
    log::info("stage ", stage, ": starting");
    auto t0 = std::chrono::steady_clock::now();
    nlohmann::json summary = run_stage(stage, ctx);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (group && runs_on_every_rank(stage)) summary["world_size"] = group->size();
    record["stages"][stage] = {{"finished", utc_now()}, {"seconds", secs}, {"summary", summary}};
    if (!group || group->is_main()) write_file_atomic(run_dir / "run.json", record.dump(2) + "\n");
    if (group && runs_on_every_rank(stage)) group->barrier(cat("the end of stage ", stage));
    log::info("stage ", stage, ": done in ", Progress::format_duration(secs));
  }
  return run_dir;
}

}  // namespace saelab
