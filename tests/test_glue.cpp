// GLUE TSV reading: every real file of ../shared/data/glue is read with the row and label counts
// its README records (BOM headers, header-less CoLA, a missing final newline, string labels,
// regression scores, unlabelled test files), and malformed files fail naming file and line.
// MNLI and QQP (not in the shared data) are read from the hand-made fixtures in
// tests/data/glue/{MNLI,QQP}, which have their real column layouts; so are split files and
// GLUE-server submission text.
#include "test_support.hpp"

#include <bitfit/data/glue.hpp>

#include <doctest/doctest.h>

#include <charconv>
#include <fstream>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace bitfit;
using bitfit::test::temp_dir;
namespace fs = std::filesystem;

namespace {

fs::path glue(const std::string& task, const std::string& file) {
  return bitfit::test::data_dir() / "glue" / task / file;
}

fs::path fixture(const std::string& task, const std::string& file) {
  return bitfit::test::golden_dir() / "glue" / task / file;
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
  CHECK_THROWS_WITH_AS(glue_task_named("snli"), doctest::Contains("unknown GLUE task 'snli'"), error);
}

TEST_CASE("glue: MNLI and QQP fixtures in their real column layouts") {
  const auto mnli = glue_task_named("MNLI");
  CHECK(mnli.labels == std::vector<std::string>{"contradiction", "entailment", "neutral"});  // HF's GLUE order
  CHECK(mnli.num_labels() == 3);
  const auto train = read_glue_tsv(fixture("MNLI", "train.tsv"), mnli);  // 12 columns: label1, gold_label
  CHECK(train.size() == 8);
  CHECK(label_counts(train, mnli) == std::vector<std::size_t>{3, 3, 2});
  CHECK(train[0].a == "The agency will publish its annual report on farm subsidies in early spring.");  // not a parse
  CHECK(train[0].b == "The report on farm subsidies comes out once a year.");
  CHECK(train[0].index == "0");
  const auto matched = read_glue_tsv(fixture("MNLI", "dev_matched.tsv"), mnli);  // 16 columns: label1..5
  CHECK(label_counts(matched, mnli) == std::vector<std::size_t>{2, 3, 1});
  CHECK(matched[2].label == 2);  // gold_label "neutral" although label3 says entailment
  const auto mismatched = read_glue_tsv(fixture("MNLI", "dev_mismatched.tsv"), mnli);
  CHECK(label_counts(mismatched, mnli) == std::vector<std::size_t>{3, 2, 1});
  for (const char* file : {"test_matched.tsv", "test_mismatched.tsv"}) {  // the first 10 columns only
    CAPTURE(file);
    const auto xs = read_glue_tsv(fixture("MNLI", file), mnli);
    CHECK(xs.size() == 6);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      CHECK(xs[i].label == -1);
      CHECK(xs[i].index == std::to_string(i));
      CHECK_FALSE(xs[i].b.empty());
    }
  }

  const auto qqp = glue_task_named("qqp");
  const auto qtrain = read_glue_tsv(fixture("QQP", "train.tsv"), qqp);
  CHECK(qtrain.size() == 8);
  CHECK(label_counts(qtrain, qqp) == std::vector<std::size_t>{4, 4});
  CHECK(qtrain[0].a == "How do I learn to cook Indian food at home?");
  CHECK(qtrain[0].b == "What is the best way to learn Indian cooking at home?");
  CHECK(qtrain[0].index == "133273");  // the id column
  CHECK(label_counts(read_glue_tsv(fixture("QQP", "dev.tsv"), qqp), qqp) == std::vector<std::size_t>{3, 3});
  const auto qtest = read_glue_tsv(fixture("QQP", "test.tsv"), qqp);  // id question1 question2
  CHECK(qtest.size() == 6);
  CHECK(qtest.back().index == "5");
  CHECK(qtest.back().b == "Who was the inventor of the telephone?");
  for (const auto& x : qtest) CHECK(x.label == -1);
}

TEST_CASE("glue: MNLI and QQP malformed rows, missing columns and bad labels name the file and line") {
  temp_dir dir;
  const auto where = (dir / "bad.tsv").string();
  const std::string mnli_header =
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
      "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n";
  const std::string row = "0\t1\t1e\tfiction\t( a )\t( b )\t(ROOT a)\t(ROOT b)\ta\tb\tentailment\t";
  CHECK(error_reading(dir, mnli_header + row + "entailment\n" + row + "maybe\n", "mnli").find(where + ":3: unknown label 'maybe'") !=
        std::string::npos);
  CHECK(error_reading(dir, mnli_header + row + "neutral\tneutral\n", "mnli").find(where + ":2: expected 12 tab-separated fields, found 13") !=
        std::string::npos);
  CHECK(error_reading(dir, "index\tpromptID\tsentence1\tgold_label\n0\t1\ta\tneutral\n", "mnli")
            .find(where + ": header has no column 'sentence2' for task mnli") != std::string::npos);
  const std::string qqp_header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n";
  CHECK(error_reading(dir, qqp_header + "0\t1\t2\tWhy?\tWhy not?\t2\n", "qqp").find(where + ":2: unknown label '2'") !=
        std::string::npos);
  CHECK(error_reading(dir, qqp_header + "0\t1\t2\tWhy?\tWhy not?\t0\n\"\tWhy?\t0\n", "qqp")
            .find(where + ":3: expected 6 tab-separated fields, found 3") != std::string::npos);
  CHECK(error_reading(dir, "id\tquestion2\n0\tWhy?\n", "qqp").find("no column 'question1'") != std::string::npos);
}

TEST_CASE("glue: dev and test split files, and the GLUE server's file names") {
  for (const char* name : {"sst2", "rte", "mrpc", "cola", "stsb", "qnli", "wnli", "qqp"}) {
    CAPTURE(name);
    const auto dev = glue_dev_splits(glue_task_named(name));
    REQUIRE(dev.size() == 1);
    CHECK(dev[0].name == "dev");
    CHECK(dev[0].file == "dev.tsv");
    CHECK(dev[0].submission.empty());
  }
  const auto mnli = glue_task_named("mnli");
  const auto dev = glue_dev_splits(mnli);
  REQUIRE(dev.size() == 2);
  CHECK((dev[0].name == "dev_matched" && dev[0].file == "dev_matched.tsv"));
  CHECK((dev[1].name == "dev_mismatched" && dev[1].file == "dev_mismatched.tsv"));
  const auto test = glue_test_splits(mnli);
  REQUIRE(test.size() == 2);
  CHECK((test[0].name == "test_matched" && test[0].file == "test_matched.tsv" && test[0].submission == "MNLI-m.tsv"));
  CHECK((test[1].name == "test_mismatched" && test[1].file == "test_mismatched.tsv" && test[1].submission == "MNLI-mm.tsv"));
  for (const auto& [name, submission] : std::vector<std::pair<std::string, std::string>>{
           {"sst2", "SST-2.tsv"}, {"rte", "RTE.tsv"}, {"cola", "CoLA.tsv"}, {"mrpc", "MRPC.tsv"}, {"stsb", "STS-B.tsv"},
           {"qnli", "QNLI.tsv"}, {"wnli", "WNLI.tsv"}, {"qqp", "QQP.tsv"}}) {
    CAPTURE(name);
    const auto splits = glue_test_splits(glue_task_named(name));
    REQUIRE(splits.size() == 1);
    CHECK((splits[0].name == "test" && splits[0].file == "test.tsv" && splits[0].submission == submission));
  }
  // Every split of the fixtures exists and reads.
  for (const auto& [task, folder] : std::vector<std::pair<std::string, std::string>>{{"mnli", "MNLI"}, {"qqp", "QQP"}}) {
    for (const auto& splits : {glue_dev_splits(glue_task_named(task)), glue_test_splits(glue_task_named(task))})
      for (const auto& s : splits) CHECK_FALSE(read_glue_tsv(fixture(folder, s.file), glue_task_named(task)).empty());
  }
}

TEST_CASE("glue: submission text has one row per test row with its index and label string") {
  const auto mnli = glue_task_named("mnli");
  const auto rows = read_glue_tsv(fixture("MNLI", "test_mismatched.tsv"), mnli);
  CHECK(glue_submission_tsv(mnli, rows, {0, 1, 2, 2, 1, 0}) ==
        "index\tprediction\n0\tcontradiction\n1\tentailment\n2\tneutral\n3\tneutral\n4\tentailment\n5\tcontradiction\n");
  // QQP: the index is the test file's id column.
  const auto qqp = glue_task_named("qqp");
  auto qrows = read_glue_tsv(fixture("QQP", "test.tsv"), qqp);
  qrows[0].index = "390965";
  CHECK(glue_submission_tsv(qqp, qrows, {1, 0, 1, 1, 0, 1}).starts_with("index\tprediction\n390965\t1\n1\t0\n2\t1\n"));
  // No index column: the row number.
  std::vector<glue_example> unindexed(3);
  CHECK(glue_submission_tsv(glue_task_named("rte"), unindexed, {1, 0, 1}) ==
        "index\tprediction\n0\tnot_entailment\n1\tentailment\n2\tnot_entailment\n");
  // STS-B: three decimals, not clipped to [0, 5].
  CHECK(glue_submission_tsv(glue_task_named("stsb"), unindexed, {3.14159f, -0.25f, 5.4996f}) ==
        "index\tprediction\n0\t3.142\n1\t-0.250\n2\t5.500\n");
  // Predictions that are no class id of the task, non-finite scores, and a count mismatch.
  const auto sst2 = glue_task_named("sst2");
  CHECK(bitfit::test::error_of([&] { glue_submission_tsv(sst2, unindexed, {0, 2, 1}); })
            .find("row 1 (index 1) of task sst2: prediction 2.000000 is not a class id (0..1)") != std::string::npos);
  CHECK(bitfit::test::error_of([&] { glue_submission_tsv(mnli, rows, {0, 1, 0.5f, 1, 1, 1}); })
            .find("row 2 (index 2) of task mnli: prediction 0.500000") != std::string::npos);
  CHECK(bitfit::test::error_of([&] { glue_submission_tsv(sst2, unindexed, {0, -1, 1}); }).find("is not a class id") !=
        std::string::npos);
  CHECK(bitfit::test::error_of([&] {
          glue_submission_tsv(glue_task_named("stsb"), unindexed, {1, std::numeric_limits<float>::quiet_NaN(), 1});
        }).find("row 1 (index 1) of task stsb: score nan is not a finite number") != std::string::npos);
  CHECK(bitfit::test::error_of([&] { glue_submission_tsv(sst2, unindexed, {0, 1}); })
            .find("3 rows but 2 predictions (task sst2)") != std::string::npos);
}

TEST_CASE("glue: every real test file gives a submission with its indices in order") {
  for (const auto& [task, folder, rows] : std::vector<std::tuple<std::string, std::string, std::size_t>>{
           {"sst2", "SST-2", 1821}, {"rte", "RTE", 3000}, {"mrpc", "MRPC", 1725}, {"cola", "CoLA", 1063},
           {"stsb", "STS-B", 1379}, {"qnli", "QNLI", 5463}, {"wnli", "WNLI", 146}}) {
    CAPTURE(folder);
    const auto t = glue_task_named(task);
    const auto split = glue_test_splits(t).at(0);
    const auto xs = read_glue_tsv(glue(folder, split.file), t);
    REQUIRE(xs.size() == rows);
    std::vector<float> predictions(xs.size(), 0.0f);
    const auto text = glue_submission_tsv(t, xs, predictions);
    std::size_t line = 0, pos = text.find('\n') + 1;
    for (; pos < text.size(); ++line) {
      const auto end = text.find('\n', pos);
      const auto tab = text.find('\t', pos);
      const std::string index = text.substr(pos, tab - pos);
      int parsed = -1;
      const auto [p, ec] = std::from_chars(index.data(), index.data() + index.size(), parsed);
      CHECK((ec == std::errc() && p == index.data() + index.size() && parsed == int(line)));
      pos = end + 1;
    }
    CHECK(line == rows);
  }
}
