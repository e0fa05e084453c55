// GLUE TSV reading: every real file of ../shared/data/glue is read with the row and label counts
// its README records (BOM headers, header-less CoLA, a missing final newline, string labels,
// regression scores, unlabelled test files), and malformed files fail naming file and line.
#include "test_support.hpp"

#include <bitfit/data/glue.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

using namespace bitfit;
using bitfit::test::temp_dir;
namespace fs = std::filesystem;

namespace {

fs::path glue(const std::string& task, const std::string& file) {
  return bitfit::test::data_dir() / "glue" / task / file;
}

std::vector<std::size_t> label_counts(const std::vector<glue_example>& xs, const glue_task& t) {
  std::vector<std::size_t> n(t.labels.size(), 0);
  for (const auto& x : xs) ++n.at(std::size_t(x.label));
  return n;
}

std::string error_reading(const temp_dir& dir, const std::string& text, const std::string& task) {
  const auto path = dir / "bad.tsv";
  std::ofstream(path, std::ios::binary) << text;
  try {
    read_glue_tsv(path, glue_task_named(task));
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("glue: labelled splits have the documented rows and label counts") {
  struct expected {
    const char* task;
    const char* folder;
    const char* file;
    std::vector<std::size_t> counts;  // per label id; empty: regression
    std::size_t rows;
  };
  const std::vector<expected> cases = {
      {"sst2", "SST-2", "train.tsv", {29780, 37569}, 67349},
      {"sst2", "SST-2", "dev.tsv", {428, 444}, 872},
      {"rte", "RTE", "train.tsv", {1249, 1241}, 2490},
      {"rte", "RTE", "dev.tsv", {146, 131}, 277},
      {"mrpc", "MRPC", "train.tsv", {1194, 2474}, 3668},
      {"mrpc", "MRPC", "dev.tsv", {129, 279}, 408},
      {"cola", "CoLA", "train.tsv", {2528, 6023}, 8551},
      {"cola", "CoLA", "dev.tsv", {322, 721}, 1043},
      {"stsb", "STS-B", "dev.tsv", {}, 1500},
      {"qnli", "QNLI", "dev.tsv", {2702, 2761}, 5463},
      {"wnli", "WNLI", "dev.tsv", {}, 71},
  };
  for (const auto& c : cases) {
    CAPTURE(c.folder);
    CAPTURE(c.file);
    const auto task = glue_task_named(c.task);
    const auto xs = read_glue_tsv(glue(c.folder, c.file), task);
    CHECK(xs.size() == c.rows);
    if (!c.counts.empty()) CHECK(label_counts(xs, task) == c.counts);
    for (const auto& x : xs) {
      CHECK_FALSE(x.a.empty());
      CHECK(x.b.empty() != task.pair());
    }
  }
}

TEST_CASE("glue: fields are read exactly, quirks included") {
  const auto sst = read_glue_tsv(glue("SST-2", "train.tsv"), glue_task_named("sst2"));
  CHECK(sst.front().a == "hide new secretions from the parental units ");  // trailing space kept
  CHECK(sst.front().label == 0);
  const auto mrpc = read_glue_tsv(glue("MRPC", "dev.tsv"), glue_task_named("MRPC"));  // BOM header
  CHECK(mrpc.front().a.rfind("He said the foodservice pie business", 0) == 0);
  const auto rte = read_glue_tsv(glue("RTE", "train.tsv"), glue_task_named("rte"));
  CHECK(rte.front().b == "Weapons of Mass Destruction Found in Iraq.");
  const auto stsb = read_glue_tsv(glue("STS-B", "dev.tsv"), glue_task_named("sts-b"));
  CHECK(stsb.front().score == doctest::Approx(5.0));
  for (const auto& x : stsb) CHECK((x.score >= 0.0f && x.score <= 5.0f));
  const auto cola = read_glue_tsv(glue("CoLA", "dev.tsv"), glue_task_named("cola"));  // no final newline
  CHECK(cola.back().a.size() > 0);
}

TEST_CASE("glue: test files carry an index and no label") {
  for (const auto& [task, folder, rows] : std::vector<std::tuple<std::string, std::string, std::size_t>>{
           {"sst2", "SST-2", 1821}, {"rte", "RTE", 3000}, {"mrpc", "MRPC", 1725}, {"cola", "CoLA", 1063},
           {"stsb", "STS-B", 1379}, {"qnli", "QNLI", 5463}, {"wnli", "WNLI", 146}}) {
    CAPTURE(folder);
    const auto xs = read_glue_tsv(glue(folder, "test.tsv"), glue_task_named(task));
    CHECK(xs.size() == rows);
    CHECK(xs.front().index == "0");
    CHECK(xs.back().index == std::to_string(rows - 1));
    for (const auto& x : xs) CHECK(x.label == -1);
  }
}

TEST_CASE("glue: malformed files give an error naming the file and the line") {
  temp_dir dir;
  const auto where = (dir / "bad.tsv").string();
  CHECK(error_reading(dir, "sentence\tlabel\ngood\t1\ntoo\tmany\tfields\n", "sst2").find(where + ":3: expected 2") !=
        std::string::npos);
  CHECK(error_reading(dir, "sentence\tlabel\nfine\t7\n", "sst2").find(where + ":2: unknown label '7'") !=
        std::string::npos);
  CHECK(error_reading(dir, "sentence1\tsentence2\tscore\na\tb\tfive\n", "stsb").find(where + ":2: score 'five'") !=
        std::string::npos);
  CHECK(error_reading(dir, "text\tlabel\na\t1\n", "sst2").find("no column 'sentence'") != std::string::npos);
  CHECK(error_reading(dir, "", "sst2").find(where + ": empty file") != std::string::npos);
  CHECK_THROWS_WITH_AS(read_glue_tsv(dir / "absent.tsv", glue_task_named("rte")), doctest::Contains("cannot open"), error);
  CHECK_THROWS_WITH_AS(glue_task_named("mnli"), doctest::Contains("unknown GLUE task 'mnli'"), error);
}
