// saelab sweep: grid points as sibling runs sharing one harvest (layout in saelab/stages/sweep.hpp).
#include "saelab/stages/sweep.hpp"

#include <cctype>
#include <set>

#include "saelab/config/experiment.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/interfaces/eval_cache.hpp"
#include "saelab/stages/runner.hpp"

namespace saelab {
namespace fs = std::filesystem;

GridAxis parse_grid_axis(const std::string& arg) {
  const auto eq = arg.find('=');
  const std::string form = "; write --grid key.path=v1,v2,... (for example --grid train.lr=1e-4,4e-4)";
  if (eq == std::string::npos || eq == 0) throw UsageError(cat("--grid ", arg, ": no key", form));
  GridAxis a{arg.substr(0, eq), {}};
  std::string rest = arg.substr(eq + 1);
  std::size_t start = 0;
  for (;;) {
    const auto comma = rest.find(',', start);
    a.values.push_back(rest.substr(start, comma - start));
    if (a.values.back().empty()) throw UsageError(cat("--grid ", arg, ": an empty value", form));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const char* section : {"source", "corpus", "harvest", "store"})
    if (a.key == section || a.key.rfind(std::string(section) + ".", 0) == 0)
      throw UsageError(cat("--grid ", a.key, ": the runs of a sweep share one harvest, so ", section,
                           " options cannot vary; sweep them with separate `saelab run`s, or set them "
                           "for every run with --set"));
  return a;
}

namespace {

std::string name_part(const GridAxis& axis, const std::string& value) {
  const auto dot = axis.key.rfind('.');
  std::string s = (dot == std::string::npos ? axis.key : axis.key.substr(dot + 1)) + "-" + value;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '+') c = '_';
  return s;
}

std::string point_name(const SweepPoint& p, const std::vector<GridAxis>& grid) {
  std::string name;
  for (std::size_t i = 0; i < grid.size(); ++i)
    name += (i ? "_" : "") + name_part(grid[i], p.settings[i].value);
  return name;
}

nlohmann::json settings_json(const SweepPoint& p) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : p.settings) j[s.key_path] = s.value;
  return j;
}

}  // namespace

std::vector<SweepPoint> sweep_points(const std::vector<GridAxis>& grid) {
  if (grid.empty())
    throw UsageError("sweep: no --grid given; give at least one, e.g. --grid train.lr=1e-4,4e-4");
  std::set<std::string> keys;
  for (const auto& a : grid)
    if (!keys.insert(a.key).second)
      throw UsageError(cat("--grid ", a.key, " is given twice; list all its values in one"));
  std::vector<SweepPoint> points{SweepPoint{}};
  for (const auto& axis : grid) {
    std::vector<SweepPoint> next;
    for (const auto& p : points)
      for (const auto& v : axis.values) {
        SweepPoint q = p;
        q.settings.push_back({axis.key, v});
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  std::set<std::string> names;
  for (auto& p : points) {
    p.name = point_name(p, grid);
    if (!names.insert(p.name).second)
      throw UsageError(cat("sweep: two points are both named '", p.name, "'; give each value once"));
  }
  return points;
}

namespace {

struct SweepPlan {
  fs::path dir, harvest_dir;
  std::vector<SweepPoint> points;
  std::vector<std::string> stages;  // what each point runs (the config's stages)
  // The clean and ablated model runs, computed for the first run's evaluation and reused by the others.
  std::shared_ptr<EvalCache> cache = std::make_shared<EvalCache>();
};

// Validates every point's configuration before anything runs.
SweepPlan plan_sweep(const SweepRequest& req) {
  const Registry& registry = plugin_registry();
  const ExperimentConfig base =
      load_experiment(req.config_file, experiment_schema(), registry, req.overrides);
  const RunSettings rs = run_settings(base.options);
  SweepPlan plan;
  const std::string name = rs.name.empty() ? req.config_file.stem().string() : rs.name;
  plan.dir = fs::absolute(req.out_dir.empty() ? fs::path("runs") / (name + "-sweep") : req.out_dir);
  plan.harvest_dir = plan.dir / "harvest";
  plan.points = sweep_points(req.grid);
  plan.stages = rs.stages;
  for (const auto& p : plan.points) {
    auto overrides = req.overrides;
    overrides.insert(overrides.end(), p.settings.begin(), p.settings.end());
    (void)run_settings(load_experiment(req.config_file, experiment_schema(), registry, overrides).options);
  }
  return plan;
}

void check_sweep_dir(const SweepPlan& plan, const SweepRequest& req) {
  std::error_code ec;
  if (!fs::exists(plan.dir, ec) || fs::is_empty(plan.dir, ec)) return;
  if (!fs::exists(plan.dir / "sweep.json"))
    throw UsageError(
        cat("output directory '", plan.dir.string(),
            "' exists and is not a saelab sweep; choose another --out (saelab never deletes what "
            "it did not write)"));
  if (!req.resume)
    throw UsageError(cat("sweep directory '", plan.dir.string(),
                         "' already exists; pass --resume to continue it, or --out DIR for a new one"));
}

RunRequest point_request(const SweepRequest& req, const SweepPlan& plan, const SweepPoint* p) {
  RunRequest r;
  r.eval_cache = plan.cache;
  r.config_file = req.config_file;
  r.overrides = req.overrides;
  r.resume = req.resume;
  r.force = req.force;
  if (!p) {  // the shared harvest
    r.out_dir = plan.harvest_dir;
    r.stages = {"harvest"};
    return r;
  }
  r.overrides.insert(r.overrides.end(), p->settings.begin(), p->settings.end());
  r.overrides.push_back({"harvest.store_dir", (plan.harvest_dir / "store").string()});
  r.out_dir = plan.dir / p->name;
  r.shared_harvest_run = plan.harvest_dir;
  return r;
}

bool stages_done(const fs::path& run_dir, const std::vector<std::string>& stages) {
  if (!fs::exists(run_dir / "run.json")) return false;
  const auto j = nlohmann::json::parse(read_file(run_dir / "run.json", 16 << 20, "run record"));
  for (const auto& s : stages)
    if (!j["stages"].contains(s)) return false;
  return true;
}

nlohmann::json eval_summary(const fs::path& run_dir) {
  if (!fs::exists(run_dir / "run.json")) return nullptr;
  const auto j = nlohmann::json::parse(read_file(run_dir / "run.json", 16 << 20, "run record"));
  if (!j["stages"].contains("evaluate")) return nullptr;
  return j["stages"]["evaluate"]["summary"];
}

}  // namespace

nlohmann::json run_sweep(const SweepRequest& req) {
  const SweepPlan plan = plan_sweep(req);
  check_sweep_dir(plan, req);
  fs::create_directories(plan.dir);
  nlohmann::json sweep = {{"file", fs::absolute(req.config_file).string()},
                          {"harvest", plan.harvest_dir.string()},
                          {"grid", nlohmann::json::object()},
                          {"runs", nlohmann::json::array()}};
  for (const auto& a : req.grid) sweep["grid"][a.key] = a.values;
  for (const auto& o : req.overrides) sweep["set"][o.key_path] = o.value;
  for (const auto& p : plan.points)
    sweep["runs"].push_back({{"name", p.name},
                             {"dir", (plan.dir / p.name).string()},
                             {"settings", settings_json(p)},
                             {"status", "pending"}});
  const auto save = [&] { write_file_atomic(plan.dir / "sweep.json", sweep.dump(2) + "\n"); };
  save();

  log::info("sweep: ", plan.points.size(), " runs in ", plan.dir.string(), "; harvesting once into ",
            plan.harvest_dir.string());
  if (!(req.resume && stages_done(plan.harvest_dir, {"harvest"}))) {
    RunRequest h = point_request(req, plan, nullptr);
    h.resume = req.resume && fs::exists(plan.harvest_dir / "run.json");
    run_experiment(h);
  }
  std::size_t failed = 0;
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const auto& p = plan.points[i];
    auto& entry = sweep["runs"][i];
    RunRequest r = point_request(req, plan, &p);
    r.resume = fs::exists(r.out_dir / "config.resolved.yaml");  // continue a run the sweep started
    log::info("sweep: run ", i + 1, "/", plan.points.size(), " '", p.name, "'");
    try {
      if (!stages_done(r.out_dir, plan.stages)) run_experiment(r);
      entry["status"] = "done";
      entry["summary"] = eval_summary(r.out_dir);
    } catch (const ConfigError&) {
      throw;  // validated up front: a configuration error now is the user's edit mid-sweep
    } catch (const Interrupted& e) {
      entry["status"] = "interrupted";
      entry["error"] = e.what();
      save();
      throw Interrupted(cat(e.what(), " The sweep stopped; continue it with saelab sweep ... --resume."));
    } catch (const std::exception& e) {
      ++failed;
      entry["status"] = "failed";
      entry["error"] = e.what();
      log::error("sweep: run '", p.name, "' failed: ", e.what(), " (the sweep goes on)");
    }
    save();
  }
  if (failed)
    throw Error(cat("sweep: ", failed, " of ", plan.points.size(), " runs failed (see ",
                    (plan.dir / "sweep.json").string(), "); fix the cause and pass --resume to redo them"));
  log::info("sweep: ", plan.cache->hits(), " evaluation model runs reused, ", plan.cache->misses(),
            " computed");
  log::info("sweep: done; compare the runs with: saelab compare ", plan.dir.string());
  return sweep;
}

}  // namespace saelab
