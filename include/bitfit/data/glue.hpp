#pragma once
/// @file glue.hpp
/// GLUE tasks as written by the GLUE download script: TSV files with the task's own columns.
/// Columns are found by header name (MRPC's header starts with a UTF-8 BOM; CoLA's train/dev have
/// no header); a row with the wrong number of fields is an error naming the file and line.
/// Also: which files hold a task's dev and test splits, and the text of a GLUE-server submission.

#include <bitfit/core/error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitfit {

/// How a GLUE task maps onto the model: one or two text columns and a label.
struct glue_task {
  std::string name;                 ///< sst2, rte, mrpc, cola, stsb, qnli, wnli, mnli, qqp
  std::string text_a, text_b;       ///< header names of the text columns (text_b empty: single)
  std::string label_column;
  std::vector<std::string> labels;  ///< class names in id order; empty = regression
  bool pair() const { return !text_b.empty(); }
  int num_labels() const { return labels.empty() ? 1 : int(labels.size()); }
};

/// The task named `name` (case-insensitive; "sst-2" and "sts-b" also accepted).
inline glue_task glue_task_named(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  std::erase(name, '-');
  if (name == "sst2") return {"sst2", "sentence", "", "label", {"0", "1"}};
  if (name == "rte") return {"rte", "sentence1", "sentence2", "label", {"entailment", "not_entailment"}};
  if (name == "mrpc") return {"mrpc", "#1 String", "#2 String", "Quality", {"0", "1"}};
  if (name == "cola") return {"cola", "sentence", "", "label", {"0", "1"}};
  if (name == "stsb") return {"stsb", "sentence1", "sentence2", "score", {}};
  if (name == "qnli") return {"qnli", "question", "sentence", "label", {"entailment", "not_entailment"}};
  if (name == "wnli") return {"wnli", "sentence1", "sentence2", "label", {"0", "1"}};
  // MNLI: 12 columns in train (label1, gold_label), 16 in dev (label1..label5, gold_label), the
  // first 10 in test; classes in the order of HF's GLUE loader.
  if (name == "mnli") return {"mnli", "sentence1", "sentence2", "gold_label", {"contradiction", "entailment", "neutral"}};
  if (name == "qqp") return {"qqp", "question1", "question2", "is_duplicate", {"0", "1"}};
  throw error("unknown GLUE task '" + name + "' (known: sst2, rte, mrpc, cola, stsb, qnli, wnli, mnli, qqp)");
}

/// One file of a task's dev or test split.
struct glue_split {
  std::string name;        ///< "dev", "test"; MNLI: "dev_matched", "dev_mismatched", "test_matched", ...
  std::string file;        ///< file name in the task's folder, e.g. "dev_matched.tsv"
  std::string submission;  ///< test splits: the file name the GLUE server expects ("MNLI-m.tsv"); dev: empty
};

/// The dev files of `task`: dev.tsv, or MNLI's dev_matched.tsv and dev_mismatched.tsv.
inline std::vector<glue_split> glue_dev_splits(const glue_task& task) {
  if (task.name == "mnli") return {{"dev_matched", "dev_matched.tsv", ""}, {"dev_mismatched", "dev_mismatched.tsv", ""}};
  return {{"dev", "dev.tsv", ""}};
}

/// The task's folder as the GLUE download script names it ("SST-2", "CoLA", "MNLI", ...), which
/// is also the GLUE server's name for it.
inline std::string glue_folder(const glue_task& task) {
  static const std::vector<std::pair<std::string, std::string>> folders = {
      {"sst2", "SST-2"}, {"rte", "RTE"},   {"mrpc", "MRPC"}, {"cola", "CoLA"}, {"stsb", "STS-B"},
      {"qnli", "QNLI"},  {"wnli", "WNLI"}, {"mnli", "MNLI"}, {"qqp", "QQP"}};
  for (const auto& [name, folder] : folders)
    if (name == task.name) return folder;
  throw error("glue_folder: unknown GLUE task '" + task.name + "'");
}

/// The test files of `task` with the name of their GLUE-server submission file: test.tsv
/// (SST-2.tsv, ...), or MNLI's test_matched.tsv (MNLI-m.tsv) and test_mismatched.tsv (MNLI-mm.tsv).
inline std::vector<glue_split> glue_test_splits(const glue_task& task) {
  if (task.name == "mnli")
    return {{"test_matched", "test_matched.tsv", "MNLI-m.tsv"}, {"test_mismatched", "test_mismatched.tsv", "MNLI-mm.tsv"}};
  return {{"test", "test.tsv", glue_folder(task) + ".tsv"}};
}

/// One example; `label` is a class id (-1 when the file has no labels), `score` the regression target.
struct glue_example {
  std::string a, b;
  int label = -1;
  float score = 0.0f;
  std::string index;  ///< the file's `index` column (QQP: `id`), when it has one; empty otherwise
};

namespace detail {
inline std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> f;
  for (std::size_t start = 0;;) {
    const auto tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return f;
    start = tab + 1;
  }
}
}  // namespace detail

/// Reads a GLUE TSV for `task`. Test files (no label column) give label -1.
inline std::vector<glue_example> read_glue_tsv(const std::filesystem::path& path, const glue_task& task) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path.string() + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  check(!lines.empty(), path.string() + ": empty file");
  if (lines[0].starts_with("\xEF\xBB\xBF")) lines[0].erase(0, 3);

  // Column indices from the header; CoLA train/dev have none (source, label, mark, sentence).
  int col_a = -1, col_b = -1, col_label = -1, col_index = -1;
  std::size_t fields = 0, first = 1;
  const auto header = detail::split_tabs(lines[0]);
  auto find = [&](const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return int(i);
    return -1;
  };
  col_a = find(task.text_a);
  if (col_a < 0 && task.name == "cola" && header.size() == 4) {
    col_label = 1, col_a = 3, fields = 4, first = 0;
  } else {
    check(col_a >= 0, path.string() + ": header has no column '" + task.text_a + "' for task " + task.name);
    if (task.pair()) {
      col_b = find(task.text_b);
      check(col_b >= 0, path.string() + ": header has no column '" + task.text_b + "' for task " + task.name);
    }
    col_label = find(task.label_column);
    col_index = find("index");
    if (col_index < 0) col_index = find("id");  // QQP
    fields = header.size();
  }

  std::vector<glue_example> out;
  for (std::size_t li = first; li < lines.size(); ++li) {
    const std::string where = path.string() + ":" + std::to_string(li + 1);
    if (lines[li].empty() && li + 1 == lines.size()) break;
    const auto f = detail::split_tabs(lines[li]);
    check(f.size() == fields, where + ": expected " + std::to_string(fields) + " tab-separated fields, found " + std::to_string(f.size()));
    glue_example ex;
    ex.a = std::string(f[std::size_t(col_a)]);
    if (col_b >= 0) ex.b = std::string(f[std::size_t(col_b)]);
    if (col_index >= 0) ex.index = std::string(f[std::size_t(col_index)]);
    if (col_label >= 0) {
      const std::string_view v = f[std::size_t(col_label)];
      if (task.labels.empty()) {
        float s = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
        check(ec == std::errc() && p == v.data() + v.size(), where + ": score '" + std::string(v) + "' is not a number");
        ex.score = s;
        ex.label = 0;
      } else {
        auto it = std::find(task.labels.begin(), task.labels.end(), v);
        check(it != task.labels.end(), where + ": unknown label '" + std::string(v) + "' for task " + task.name);
        ex.label = int(it - task.labels.begin());
      }
    }
    out.push_back(std::move(ex));
  }
  return out;
}

/// The text of a GLUE-server submission file for `rows` (as read from a test file) and one
/// prediction per row: a header `index\tprediction`, then per row its `index` (the file's index or
/// id column; the row number from 0 when the file has none) and its prediction. Classification:
/// the prediction is a class id (0, 1, ... as a float, as predict() gives it), written as the
/// task's label string ("entailment", "1"); anything else is an error. STS-B: the score with three
/// decimals, not clipped to [0, 5]: the server takes any number, and the dev metrics are computed
/// on the same unclipped outputs, so dev and test are scored alike. A non-finite score is an error.
inline std::string glue_submission_tsv(const glue_task& task, const std::vector<glue_example>& rows,
                                       const std::vector<float>& predictions) {
  check(rows.size() == predictions.size(), "glue_submission_tsv: " + std::to_string(rows.size()) + " rows but " +
                                               std::to_string(predictions.size()) + " predictions (task " + task.name + ")");
  std::string out = "index\tprediction\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string index = rows[i].index.empty() ? std::to_string(i) : rows[i].index;
    const float p = predictions[i];
    const auto where = [&] { return "glue_submission_tsv: row " + std::to_string(i) + " (index " + index + ") of task " + task.name; };
    out += index;
    out += '\t';
    if (task.labels.empty()) {
      if (!std::isfinite(p)) throw error(where() + ": score " + std::to_string(p) + " is not a finite number");
      char buf[64];
      const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, double(p), std::chars_format::fixed, 3);
      if (ec != std::errc()) throw error(where() + ": cannot format score " + std::to_string(p));
      out.append(buf, end);
    } else {
      const bool is_class = p >= 0.0f && p < float(task.labels.size()) && p == std::floor(p);
      if (!is_class)
        throw error(where() + ": prediction " + std::to_string(p) + " is not a class id (0.." +
                    std::to_string(task.labels.size() - 1) + ")");
      out += task.labels[std::size_t(p)];
    }
    out += '\n';
  }
  return out;
}

}  // namespace bitfit
