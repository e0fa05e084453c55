#pragma once
// `bitfit plot`: the figures of a run and of the reproduction, as SVG and PNG (plot.hpp).
//   bitfit plot curves --metrics runs/x/metrics.json --output docs/fig/x
//   bitfit plot bias-change --model DIR --patch FILE --output docs/fig/rte_bias_change
//   bitfit plot results --table results.json --output docs/fig/table2

#include "commands_train.hpp"
#include "options.hpp"
#include "plot.hpp"

#include <bitfit/bitfit.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace bitfit::cli {

inline nlohmann::json read_json_file(const std::filesystem::path& file) {
  auto j = nlohmann::json::parse(detail::read_file(file), nullptr, false);
  check(!j.is_discarded(), file.string() + ": not valid JSON");
  return j;
}

/// `{"title", "ylabel", "series": [..], "groups": [{"name", "value": [..], "err": [..]}]}`; a null
/// value is a cell not measured (yet): no bar.
inline std::vector<bar_group> parse_bar_table(const nlohmann::json& t, const std::filesystem::path& file) {
  const std::string where = file.string() + ": ";
  check(t.is_object() && t.contains("series") && t["series"].is_array() && t.contains("groups") && t["groups"].is_array(),
        where + "expected an object with 'series' and 'groups' arrays");
  const std::size_t n = t["series"].size();
  std::vector<bar_group> groups;
  for (const auto& g : t["groups"]) {
    check(g.is_object() && g.value("name", nlohmann::json()).is_string(), where + "each group needs a 'name'");
    bar_group b{g["name"], {}, {}};
    for (const char* key : {"value", "err"}) {
      auto& out = key[0] == 'v' ? b.value : b.err;
      const auto& a = g.value(key, nlohmann::json::array());
      check(a.is_array() && (a.empty() || a.size() == n),
            where + "group '" + b.name + "': '" + key + "' must have one entry per series (" + std::to_string(n) + ")");
      for (const auto& v : a) {
        check(v.is_null() || v.is_number(), where + "group '" + b.name + "': '" + key + "' holds a non-number");
        out.push_back(v.is_null() ? NAN : v.get<double>());
      }
    }
    if (b.err.empty()) b.err.assign(n, NAN);
    check(b.value.size() == n, where + "group '" + b.name + "' has no 'value'");
    groups.push_back(std::move(b));
  }
  return groups;
}

inline int run_plot(int argc, char** argv) {
  const std::string kind = argc > 2 ? argv[2] : "";
  // Figures go to OUTPUT.svg/.png (or OUTPUT_<metric>.*): make OUTPUT's folder.
  auto make_parent = [](const std::string& prefix) {
    if (const auto dir = std::filesystem::path(prefix).parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
    return std::filesystem::path(prefix);
  };
  if (kind == "curves") {
    options opt("plot curves", "Learning curves of a run: one figure per metric (train and dev per epoch) and the training loss.",
                {{"metrics", "FILE", "a run's metrics.json", "", false, true},
                 {"output", "PREFIX", "figures go to PREFIX_<metric>.svg and .png", "", false, true}});
    if (!opt.parse(argc, argv, 3)) return 0;
    plot_learning_curves(read_json_file(opt.str("metrics")), make_parent(opt.str("output")));
  } else if (kind == "bias-change") {
    options opt("plot bias-change", "The paper's Figure 1: mean |b_F - b_0| of each bias term in each layer of a patch.",
                {{"-m,--model-name,--model", "DIR|NAME", "the backbone the patch was trained on", "", false, true},
                 {"patch", "FILE", "a bias patch (or full checkpoint) from bitfit train", "", false, true},
                 {"output", "PREFIX", "the heatmap goes to PREFIX.svg and .png", "", false, true},
                 {"title", "TEXT", "figure title (default: task and fine-tune type of the patch)"},
                 {"json", "FILE", "also write the table as JSON (atomically)"}});
    if (!opt.parse(argc, argv, 3)) return 0;
    const std::string patch = opt.str("patch");
    auto loaded = load_backbone(resolve_model(opt.str("model-name")), precision_request::fp32);
    const bert_params<float> before = loaded.params;
    task_head<float> head;
    const auto info = apply_patch(patch, loaded.params, head, loaded.id);
    const auto change = bias_change_between(before, loaded.params);
    plot_bias_change(change, opt.has("title") ? opt.str("title") : info.task + " " + info.fine_tune_type, make_parent(opt.str("output")));
    if (opt.has("json")) {
      nlohmann::json j = {{"patch", patch}, {"layers", change.layers}, {"terms", nlohmann::json::object()}};
      for (std::size_t i = 0; i < change.terms.size(); ++i) {
        std::vector<double> row(change.value.begin() + std::ptrdiff_t(i) * change.layers,
                                change.value.begin() + std::ptrdiff_t(i + 1) * change.layers);
        j["terms"][std::string(term_name(change.terms[i]))] = row;
      }
      write_file_atomic(opt.str("json"), j.dump(1) + "\n");
    }
  } else if (kind == "results") {
    options opt("plot results", "A grouped bar chart of a results table (paper vs ours, with std error bars).",
                {{"table", "FILE", "JSON: {title, ylabel, series: [...], groups: [{name, value: [...], err: [...]}]}", "", false, true},
                 {"output", "PREFIX", "the chart goes to PREFIX.svg and .png", "", false, true}});
    if (!opt.parse(argc, argv, 3)) return 0;
    const auto t = read_json_file(opt.str("table"));
    const auto groups = parse_bar_table(t, opt.str("table"));
    plot_results_bars(groups, t["series"].get<std::vector<std::string>>(), t.value("title", ""), t.value("ylabel", ""),
                      make_parent(opt.str("output")));
  } else {
    if (kind == "--help" || kind == "-h") {
      std::printf("usage: bitfit plot curves|bias-change|results [options]   (bitfit plot <kind> --help)\n");
      return 0;
    }
    throw error("bitfit plot: " + (kind.empty() ? std::string("which plot? ") : "unknown plot '" + kind + "'; ") +
                "curves, bias-change or results");
  }
  return 0;
}

}  // namespace bitfit::cli
