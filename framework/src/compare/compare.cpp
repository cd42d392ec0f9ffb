// Runs side by side (saelab/compare/compare.hpp): reading eval.json and sweep.json, the table.
#include "saelab/compare/compare.hpp"

#include <cstdio>
#include <map>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

constexpr std::uintmax_t kMaxEvalBytes = 256u << 20;

nlohmann::json read_json(const fs::path& p, const char* what) {
  const std::string text = read_file(p, kMaxEvalBytes, what);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat("'", p.string(), "' is not valid JSON (", e.what(), ")"));
  }
}

std::optional<double> number_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return std::nullopt;
    at = &(*at)[key];
  }
  return at->is_number() ? std::optional<double>(at->get<double>()) : std::nullopt;
}

RunMetrics read_run(const fs::path& dir, std::string label) {
  const nlohmann::json e = read_json(dir / "eval.json", "evaluation");
  RunMetrics m;
  m.label = std::move(label);
  m.dir = dir;
  m.l0 = number_at(e, {"sparsity", "l0"});
  m.explained_variance = number_at(e, {"reconstruction", "explained_variance"});
  m.mse = number_at(e, {"reconstruction", "mse"});
  m.ce_loss_score = number_at(e, {"downstream", "ce_loss_score"});
  m.kl_div_spliced = number_at(e, {"downstream", "kl_div_spliced"});
  m.sae_top_1_test_accuracy = number_at(e, {"sparse_probing", "mean", "sae_top_1_test_accuracy"});
  m.d_sae = static_cast<std::int64_t>(number_at(e, {"sae", "d_sae"}).value_or(0));
  const auto dead = number_at(e, {"sparsity", "dead_latents"});
  if (dead && m.d_sae > 0) m.dead_fraction = *dead / double(m.d_sae);
  return m;
}

std::string settings_label(const nlohmann::json& settings) {
  std::string s;
  for (const auto& [key, value] : settings.items()) {
    const auto dot = key.rfind('.');
    s += (s.empty() ? "" : ", ") + (dot == std::string::npos ? key : key.substr(dot + 1)) + "=" +
         (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return s;
}

void add_sweep(const fs::path& dir, std::vector<RunMetrics>& out) {
  const nlohmann::json sweep = read_json(dir / "sweep.json", "sweep record");
  std::size_t found = 0;
  for (const auto& run : sweep.value("runs", nlohmann::json::array())) {
    const fs::path rd = dir / run.value("name", std::string());
    if (!fs::exists(rd / "eval.json")) continue;
    out.push_back(read_run(rd, settings_label(run.value("settings", nlohmann::json::object()))));
    ++found;
  }
  if (found == 0)
    throw UsageError(
        cat("sweep '", dir.string(), "' has no evaluated run yet (none of its runs has eval.json)"));
}

std::string fmt(const std::optional<double>& v, const char* f = "%.4f") {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, f, *v);
  return buf;
}

}  // namespace

std::vector<RunMetrics> collect_runs(const std::vector<fs::path>& paths) {
  if (paths.empty()) throw UsageError("compare: give run or sweep directories");
  std::vector<RunMetrics> out;
  for (const auto& p : paths) {
    if (fs::exists(p / "sweep.json")) {
      add_sweep(p, out);
    } else if (fs::exists(p / "eval.json")) {
      out.push_back(read_run(p, fs::path(p).lexically_normal().filename().empty()
                                    ? fs::path(p).lexically_normal().parent_path().filename().string()
                                    : fs::path(p).lexically_normal().filename().string()));
    } else {
      throw UsageError(cat("compare: '", p.string(),
                           "' is neither an evaluated run (no eval.json) nor a sweep (no sweep.json); run "
                           "saelab eval on it first"));
    }
  }
  return out;
}

std::string comparison_table(const std::vector<RunMetrics>& runs) {
  std::size_t w = 5;
  for (const auto& r : runs) w = std::max(w, r.label.size());
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s %9s %9s %9s %9s %9s %9s %9s\n", int(w), "run", "L0", "EV", "MSE",
                "CE score", "KL", "dead", "probe@1");
  out += line;
  for (const auto& r : runs) {
    std::snprintf(line, sizeof line, "%-*s %9s %9s %9s %9s %9s %9s %9s\n", int(w), r.label.c_str(),
                  fmt(r.l0, "%.2f").c_str(), fmt(r.explained_variance).c_str(), fmt(r.mse, "%.4g").c_str(),
                  fmt(r.ce_loss_score).c_str(), fmt(r.kl_div_spliced, "%.4g").c_str(),
                  fmt(r.dead_fraction).c_str(), fmt(r.sae_top_1_test_accuracy, "%.3f").c_str());
    out += line;
  }
  return out;
}

nlohmann::json comparison_json(const std::vector<RunMetrics>& runs) {
  nlohmann::json a = nlohmann::json::array();
  const auto opt = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  for (const auto& r : runs)
    a.push_back({{"label", r.label},
                 {"dir", r.dir.string()},
                 {"d_sae", r.d_sae},
                 {"l0", opt(r.l0)},
                 {"explained_variance", opt(r.explained_variance)},
                 {"mse", opt(r.mse)},
                 {"ce_loss_score", opt(r.ce_loss_score)},
                 {"kl_div_spliced", opt(r.kl_div_spliced)},
                 {"dead_fraction", opt(r.dead_fraction)},
                 {"sae_top_1_test_accuracy", opt(r.sae_top_1_test_accuracy)}});
  return {{"runs", std::move(a)}};
}

std::vector<fs::path> write_frontier_plots(const std::vector<RunMetrics>& runs, const fs::path& dir) {
  struct Spec {
    const char* name;
    const char* title;
    const char* y_label;
    std::optional<double> RunMetrics::*y;
    bool connect;
  };
  const Spec specs[] = {
      {"frontier_explained_variance", "Sparsity against explained variance", "explained variance",
       &RunMetrics::explained_variance, true},
      {"frontier_ce_loss_score", "Sparsity against CE loss recovered", "CE loss recovered (ce_loss_score)",
       &RunMetrics::ce_loss_score, true},
      {"dead_fraction", "Dead latents", "dead fraction", &RunMetrics::dead_fraction, false},
  };
  fs::create_directories(dir);
  std::vector<fs::path> written;
  for (const auto& s : specs) {
    ScatterPlot plot{s.title, "L0 (active latents per token)", s.y_label, {}, s.connect};
    for (const auto& r : runs)
      if (r.l0 && (r.*s.y)) plot.points.push_back({*r.l0, *(r.*s.y), r.label});
    if (plot.points.empty()) continue;  // e.g. CE metrics of runs evaluated on stored activations
    const std::string svg = scatter_svg(plot);
    write_file_atomic(dir / (std::string(s.name) + ".svg"), svg);
    write_svg_as_png(svg, dir / (std::string(s.name) + ".png"));
    written.push_back(dir / (std::string(s.name) + ".svg"));
    written.push_back(dir / (std::string(s.name) + ".png"));
  }
  return written;
}

}  // namespace saelab
