#pragma once
/// @file glue.hpp
/// GLUE tasks as written by the GLUE download script: TSV files with the task's own columns.
/// Columns are found by header name (MRPC's header starts with a UTF-8 BOM; CoLA's train/dev have
/// no header); a row with the wrong number of fields is an error naming the file and line.

#include <bitfit/core/error.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitfit {

/// How a GLUE task maps onto the model: one or two text columns and a label.
struct glue_task {
  std::string name;                 ///< sst2, rte, mrpc, cola, stsb, qnli, wnli
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
  throw error("unknown GLUE task '" + name + "' (known: sst2, rte, mrpc, cola, stsb, qnli, wnli)");
}

/// One example; `label` is a class id (-1 when the file has no labels), `score` the regression target.
struct glue_example {
  std::string a, b;
  int label = -1;
  float score = 0.0f;
  std::string index;  ///< the file's index column, when it has one (test files)
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

}  // namespace bitfit
