// The figures of tools/bitfit/plot.hpp, rendered by the real gnuplot (CI installs gnuplot-nox; a
// machine without it fails here, it does not skip): learning curves, the bias-change heatmap and
// grouped bars each give an SVG with its title and a PNG; data strings print verbatim; failures
// (no gnuplot, gnuplot failing, bad input) are bitfit::errors that name the figure, and leave no
// file behind.
#include "../tools/bitfit/plot.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace bitfit;
using bitfit::test::error_of;
using bitfit::test::temp_dir;
using bitfit::test::tiny_config;
namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// An SVG that names `title`, and its PNG twin: a PNG signature and more than a blank canvas.
void check_figure(const fs::path& stem, const std::string& title) {
  CAPTURE(stem.string());
  const std::string svg = read_all(stem.string() + ".svg"), png = read_all(stem.string() + ".png");
  CHECK(svg.starts_with("<?xml"));
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(svg.find(title) != std::string::npos);
  REQUIRE(png.size() > 8);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(png.size() > 10000);
}

/// Every file in `dir`, by name.
std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

nlohmann::json mnli_metrics() {
  nlohmann::json m = {{"task", "mnli"}, {"fine_tune_type", "bitfit"}, {"epoch", nlohmann::json::array()}};
  for (int e = 1; e <= 3; ++e)
    m["epoch"].push_back({{"epoch", e},
                          {"train_loss", 0.9 / e},
                          {"seconds", 12.5},
                          {"train", {{"accuracy", 0.7 + 0.05 * e}}},
                          {"dev_matched", {{"accuracy", 0.68 + 0.03 * e}}},
                          {"dev_mismatched", {{"accuracy", 0.69 + 0.03 * e}}}});
  return m;
}

std::vector<cli::bar_group> rte_mrpc() {
  return {{"RTE", {70.8, 72.0, 68.2, NAN}, {1.1, 1.5, 2.0, NAN}}, {"MRPC", {87.1, 90.4, 86.0, 89.0}, {}}};
}
const std::vector<std::string> four_series = {"paper Full-FT", "paper BitFit", "ours Full-FT", "ours BitFit"};

/// Sets an environment variable for the scope.
struct scoped_env {
  std::string name;
  scoped_env(std::string n, const std::string& value) : name(std::move(n)) { ::setenv(name.c_str(), value.c_str(), 1); }
  ~scoped_env() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("learning curves: one figure per metric and one for the loss, MNLI's two dev splits") {
  temp_dir dir;
  const auto files = cli::plot_learning_curves(mnli_metrics(), dir / "mnli");
  const std::vector<fs::path> expected = {dir / "mnli_accuracy.svg", dir / "mnli_accuracy.png", dir / "mnli_loss.svg",
                                          dir / "mnli_loss.png"};
  CHECK(files == expected);
  check_figure(dir / "mnli_accuracy", "mnli bitfit: accuracy");
  check_figure(dir / "mnli_loss", "mnli bitfit: loss");
  const std::string svg = read_all(dir / "mnli_accuracy.svg");
  for (const char* split : {"train", "dev_matched", "dev_mismatched"}) CHECK(svg.find(split) != std::string::npos);
  CHECK(files_in(dir.path).size() == 4);  // no temporaries left
}

TEST_CASE("learning curves: flat dev_<metric> numbers, a metric missing in an epoch, strings printed verbatim") {
  temp_dir dir;
  nlohmann::json m = {{"task", "rte_it's"}, {"fine_tune_type", "full_ft"}, {"epoch", nlohmann::json::array()}};
  m["epoch"].push_back({{"epoch", 1}, {"train_loss", 0.7}, {"dev_accuracy", 0.61}, {"dev", {{"f1", 0.5}}}});
  m["epoch"].push_back({{"epoch", 2}, {"train_loss", 0.5}, {"dev_accuracy", 0.66}});
  const auto files = cli::plot_learning_curves(m, dir / "run");
  CHECK(files.size() == 6);
  check_figure(dir / "run_accuracy", "rte_it's full_ft: accuracy");
  check_figure(dir / "run_f1", "rte_it's full_ft: f1");
  check_figure(dir / "run_loss", "rte_it's full_ft: loss");
}

TEST_CASE("learning curves: metrics without epochs or without metrics are refused") {
  temp_dir dir;
  CHECK(error_of([&] { cli::plot_learning_curves({{"task", "rte"}}, dir / "x"); }).find("no 'epoch' array") !=
        std::string::npos);
  const nlohmann::json empty = {{"epoch", {{{"epoch", 1}, {"seconds", 3.0}}}}};
  CHECK(error_of([&] { cli::plot_learning_curves(empty, dir / "x"); }).find("no per-epoch") != std::string::npos);
  CHECK(files_in(dir.path).empty());
}

TEST_CASE("bias change heatmap: every term row labelled, title verbatim") {
  temp_dir dir;
  bert_params<float> before(tiny_config(), false);
  auto after = before;
  for (int l = 0; l < 2; ++l) {
    after.bias(term::bq, l)[0] = 0.8f;
    after.bias(term::bm2, l)[3] = -0.4f;
  }
  const auto change = bias_change_between(before, after);
  const auto files = cli::plot_bias_change(change, "RTE \"BitFit\": b_F - b_0", dir / "bias_change");
  CHECK(files == std::vector<fs::path>{dir / "bias_change.svg", dir / "bias_change.png"});
  check_figure(dir / "bias_change", "RTE \"BitFit\": b_F - b_0");
  const std::string svg = read_all(dir / "bias_change.svg");
  for (term t : layer_terms) CHECK(svg.find(">" + std::string(term_name(t)) + "<") != std::string::npos);
  CHECK(svg.find("0.100") != std::string::npos);  // bq: 0.8 / 8, printed in its cell
}

TEST_CASE("bias change heatmap: an empty or malformed table is refused") {
  temp_dir dir;
  bias_change bad;
  CHECK(error_of([&] { cli::plot_bias_change(bad, "t", dir / "b"); }).find("empty or not terms x layers") !=
        std::string::npos);
}

TEST_CASE("grouped bars: NaN values and missing errors render; sizes must match the series") {
  temp_dir dir;
  const auto files = cli::plot_results_bars(rte_mrpc(), four_series, "RTE & MRPC: paper vs ours", "dev score (%)",
                                            dir / "results");
  CHECK(files == std::vector<fs::path>{dir / "results.svg", dir / "results.png"});
  check_figure(dir / "results", "RTE &amp; MRPC: paper vs ours");
  const std::string svg = read_all(dir / "results.svg");
  for (const auto& s : four_series) CHECK(svg.find(s) != std::string::npos);
  CHECK(svg.find("90.4") != std::string::npos);  // values printed above their bars

  auto groups = rte_mrpc();
  groups[1].value.pop_back();
  CHECK(error_of([&] { cli::plot_results_bars(groups, four_series, "t", "y", dir / "bad"); }) ==
        "plot_results_bars " + (dir / "bad").string() + ": group 'MRPC' has 3 values for 4 series");
  groups = rte_mrpc();
  groups[0].err[1] = -1.0;
  CHECK(error_of([&] { cli::plot_results_bars(groups, four_series, "t", "y", dir / "bad"); }).find("negative error") !=
        std::string::npos);
  CHECK(error_of([&] { cli::plot_results_bars({}, four_series, "t", "y", dir / "bad"); }).find("at least one group") !=
        std::string::npos);
}

TEST_CASE("a missing output directory is named") {
  temp_dir dir;
  CHECK(error_of([&] { cli::plot_results_bars(rte_mrpc(), four_series, "t", "y", dir / "no/such/results"); }) ==
        "plot " + (dir / "no/such/results").string() + ": directory " + (dir / "no/such").string() +
            " does not exist");
}

TEST_CASE("gnuplot missing or failing: an error naming the figure and what gnuplot said; no file left") {
  temp_dir dir;
  {
    scoped_env env("BITFIT_GNUPLOT", (dir / "no-such-gnuplot").string());
    const auto msg = error_of([&] { cli::plot_results_bars(rte_mrpc(), four_series, "t", "y", dir / "results"); });
    CHECK(msg.starts_with("plot " + (dir / "results").string() + ": cannot run "));
    CHECK(msg.find("gnuplot-nox") != std::string::npos);
  }
  const auto fake = dir.write("fake-gnuplot", "#!/bin/sh\necho 'line 12: undefined variable: boom' >&2\nexit 3\n");
  fs::permissions(fake, fs::perms::owner_all);
  {
    scoped_env env("BITFIT_GNUPLOT", fake.string());
    const auto msg = error_of([&] { cli::plot_learning_curves(mnli_metrics(), dir / "mnli"); });
    CHECK(msg == "plot " + (dir / "mnli_accuracy").string() +
                     ": gnuplot failed (exit status 3): line 12: undefined variable: boom");
  }
  CHECK(files_in(dir.path) == std::vector<std::string>{"fake-gnuplot"});
}
