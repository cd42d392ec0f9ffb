// saelab sweep and saelab compare: grid points and their names, one shared harvest, resuming, the
// held-out split of every run, the comparison table and the frontier plots (SVG and PNG).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "saelab/compare/compare.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/stages/sweep.hpp"
#include "test_support.hpp"

namespace saelab {
namespace {
namespace fs = std::filesystem;
using test::run_command;

using test::exe;

int count_occurrences(const std::string& s, const std::string& part) {
  int n = 0;
  for (auto at = s.find(part); at != std::string::npos; at = s.find(part, at + part.size())) ++n;
  return n;
}

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(read_file(p, 1 << 26, "test json"));
}

TEST(Sweep, GridIsTheCrossProductWithReadableNames) {
  const auto points = sweep_points(
      {parse_grid_axis("train.losses.1.coefficient=1,2.5"), parse_grid_axis("train.sae.d_sae=4096,8192")});
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0].name, "coefficient-1_d_sae-4096");
  EXPECT_EQ(points[1].name, "coefficient-1_d_sae-8192");
  EXPECT_EQ(points[3].name, "coefficient-2.5_d_sae-8192");
  EXPECT_EQ(points[2].settings[0].key_path, "train.losses.1.coefficient");
  EXPECT_EQ(points[2].settings[0].value, "2.5");
  EXPECT_EQ(sweep_points({parse_grid_axis("train.lr=/x y")})[0].name, "lr-_x_y");
}

TEST(Sweep, BadGridsSayWhatIsAllowed) {
  const auto shared = test::error_of([] { parse_grid_axis("harvest.tokens=1000,2000"); });
  std::printf("%s\n", shared.c_str());
  EXPECT_TRUE(test::contains(shared, "share one harvest")) << shared;
  EXPECT_TRUE(test::contains(test::error_of([] { parse_grid_axis("train.lr"); }), "key.path=v1,v2"));
  EXPECT_TRUE(test::contains(test::error_of([] { parse_grid_axis("train.lr=1,,2"); }), "an empty value"));
  EXPECT_TRUE(test::contains(test::error_of([] {
                               sweep_points({parse_grid_axis("train.lr=1"), parse_grid_axis("train.lr=2")});
                             }),
                             "given twice"));
  EXPECT_TRUE(test::contains(test::error_of([] { sweep_points({parse_grid_axis("train.lr=1,1")}); }),
                             "both named 'lr-1'"));
}

TEST(Compare, ScatterSvgLabelsEveryPointAndEscapes) {
  ScatterPlot plot{
      "L0 <against> EV", "L0", "EV", {{10, 0.9, "k=8"}, {3, 0.7, "a&b"}, {20, 0.95, "k=32"}}, true};
  const auto svg = scatter_svg(plot);
  EXPECT_TRUE(test::contains(svg, "L0 &lt;against&gt; EV"));
  EXPECT_TRUE(test::contains(svg, ">a&amp;b</text>"));
  EXPECT_TRUE(test::contains(svg, ">k=32</text>"));
  EXPECT_FALSE(test::contains(svg, "<script"));
  EXPECT_FALSE(test::contains(svg, "href"));
  EXPECT_TRUE(test::contains(svg, "<polyline"));
  test::TempDir dir;
  write_svg_as_png(svg, dir / "p.png");
  const std::string png = test::read_bytes(dir / "p.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  // IHDR: the PNG has the SVG's size (720 × 460).
  const auto be32 = [&](std::size_t at) {
    return (std::uint32_t(std::uint8_t(png[at])) << 24) | (std::uint32_t(std::uint8_t(png[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(png[at + 2])) << 8) | std::uint32_t(std::uint8_t(png[at + 3]));
  };
  EXPECT_EQ(be32(16), 720u);
  EXPECT_EQ(be32(20), 460u);
  EXPECT_TRUE(test::contains(test::error_of([] { write_svg_as_png("<svg", "/tmp/never.png"); }),
                             "cannot parse the SVG for '/tmp/never.png'"));
}

// Two TopK SAEs on the synthetic source, one harvest between them.
TEST(Sweep, RunsShareOneHarvestResumeAndCompare) {
  auto dir = test::scratch_dir("cli-sweep");
  const std::string src = SAELAB_SOURCE_DIR;
  const std::string sweep =
      "cd \"" + src + "\" && " + exe() + " sweep experiments/synthetic.yaml --out " + (dir / "sw").string() +
      " --grid train.sae.k=4,8 --set harvest.tokens=60000 --set train.training_tokens=120000"
      " --set evaluate.evaluator.batches=2 --set stages=[harvest,train,evaluate]";
  auto r = run_command(sweep);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto record = read_json(dir / "sw" / "sweep.json");
  ASSERT_EQ(record["runs"].size(), 2u);
  EXPECT_EQ(record["grid"]["train.sae.k"], nlohmann::json({"4", "8"}));
  const auto harvest = read_json(dir / "sw" / "harvest" / "run.json")["stages"]["harvest"]["summary"];
  for (const auto& run : record["runs"]) {
    EXPECT_EQ(run["status"], "done") << run.dump();
    const fs::path rd = run["dir"].get<std::string>();
    EXPECT_FALSE(fs::exists(rd / "store")) << "each run must use the shared store";
    const auto rj = read_json(rd / "run.json");
    EXPECT_EQ(rj["stages"]["harvest"]["shared_from"], (dir / "sw" / "harvest").string());
    const auto eval = read_json(rd / "eval.json");
    EXPECT_EQ(eval["held_out"]["first_sequence"], harvest["sequences"]);  // after the harvested ones
    EXPECT_FALSE(eval["held_out"]["overlaps_training"].get<bool>());
    EXPECT_EQ(run["summary"]["l0"], eval["summary"]["l0"]);
  }
  EXPECT_NEAR(read_json(dir / "sw" / "k-4" / "eval.json")["sparsity"]["l0"].get<double>(), 4.0, 0.5);
  EXPECT_EQ(count_occurrences(r.output, "stage harvest: starting"), 1) << r.output;

  auto again = run_command(sweep);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_TRUE(test::contains(again.output, "already exists; pass --resume")) << again.output;
  auto resumed = run_command(sweep + " --resume");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_FALSE(test::contains(resumed.output, "stage train: starting")) << resumed.output;

  auto cmp = run_command(exe() + " compare " + (dir / "sw").string());
  ASSERT_EQ(cmp.exit_code, 0) << cmp.output;
  std::printf("%s", cmp.output.c_str());
  EXPECT_TRUE(test::contains(cmp.output, "k=4 ")) << cmp.output;
  EXPECT_TRUE(test::contains(cmp.output, "k=8 ")) << cmp.output;
  for (const char* f : {"frontier_explained_variance", "frontier_ce_loss_score", "dead_fraction"}) {
    EXPECT_TRUE(test::contains(read_file(dir / "sw" / "compare" / (std::string(f) + ".svg"), 1 << 20, "svg"),
                               ">k=8</text>"))
        << f;
    EXPECT_EQ(test::read_bytes(dir / "sw" / "compare" / (std::string(f) + ".png")).substr(1, 3), "PNG") << f;
  }
  const auto cj = read_json(dir / "sw" / "compare" / "compare.json");
  EXPECT_EQ(cj["runs"][1]["explained_variance"],
            read_json(dir / "sw" / "k-8" / "eval.json")["reconstruction"]["explained_variance"]);
  auto missing = run_command(exe() + " compare " + (dir / "nothing").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_TRUE(test::contains(missing.output, "neither an evaluated run")) << missing.output;
}

}  // namespace
}  // namespace saelab
