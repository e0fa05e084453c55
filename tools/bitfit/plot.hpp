#pragma once
// Figures of the `bitfit` tool (issue #9): learning curves from a run's metrics.json, the paper's
// Figure 1 heatmap of how far each bias term moved, and grouped bars of a reproduction table.
// Plain data in, files out: each figure is written as <stem>.svg and <stem>.png.
//
// Why gnuplot (Debian gnuplot-nox) and not a plotting library such as PLplot:
//  - its cairo terminals (svg, pngcairo) are mature: anti-aliased text, UTF-8, no X server;
//  - a heatmap with a colour box, or grouped bars with error bars, is a few lines of script, with
//    axes, tick labels, legends and margins laid out by gnuplot; PLplot would have us place
//    axes and legends by hand, which is plotting code of our own to maintain;
//  - it runs as a separate process (posix_spawn), so a plotting failure (a missing font, a
//    crash, a bad value) is an error message, never a crash of the process that trained.
//
// Each figure is one gnuplot run: a script with the data inline (`$data << EOD`), rendered once
// per terminal into temporary files that are renamed over the final names only when gnuplot
// succeeded (bitfit/core/atomic_file.hpp), so a reader never sees half a figure. Strings from
// data (task, metric, series and group names, titles) are quoted for gnuplot and drawn
// `noenhanced`, so quotes, underscores and carets print as they are. The program is `gnuplot`
// on PATH, or $BITFIT_GNUPLOT when set.

#include <bitfit/core/atomic_file.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/train/bias_change.hpp>
#include <bitfit/train/mask.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;

namespace bitfit::cli {

/// One group of a grouped bar chart (a task, say): a value per series and its error (a std).
/// NaN in `value` means "not run yet" (no bar); NaN in `err`, or an empty `err`, means no error bar.
struct bar_group {
  std::string name;
  std::vector<double> value;  ///< one per series
  std::vector<double> err;    ///< one per series, or empty
};

namespace plot_detail {

/// A gnuplot string literal: single-quoted (no escapes are processed inside), ' doubled, control
/// characters (which would end the command) as spaces.
inline std::string quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "''";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) q += ' ';
    else q += c;
  }
  return q + "'";
}

/// A number for inline data: "?" (gnuplot's missing value, set below) when not finite.
inline std::string number(double v) {
  if (!std::isfinite(v)) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// `name` made safe as part of a file name: letters, digits, '.', '-' and '_' kept, others '_'.
inline std::string file_part(std::string_view name) {
  std::string s;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    s += ok ? c : '_';
  }
  return s.empty() ? "_" : s;
}

/// Decimals that show the largest magnitude `max_abs` with 3 significant digits (0 to 6).
inline int decimals_for(double max_abs) {
  if (!(max_abs > 0) || !std::isfinite(max_abs)) return 2;
  return std::clamp(2 - int(std::floor(std::log10(max_abs))), 0, 6);
}

/// The gnuplot program: $BITFIT_GNUPLOT, or "gnuplot" looked up on PATH.
inline std::string gnuplot_program() {
  const char* p = std::getenv("BITFIT_GNUPLOT");
  return p && *p ? p : "gnuplot";
}

/// Removes its files at scope exit (temporaries of a figure that failed, or the script).
struct remove_at_exit {
  std::vector<std::filesystem::path> paths;
  ~remove_at_exit() {
    std::error_code ignored;
    for (const auto& p : paths) std::filesystem::remove(p, ignored);
  }
};

/// The text of `path` (at most `max_bytes`), or "" if it cannot be read.
inline std::string read_text(const std::filesystem::path& path, std::size_t max_bytes = 4000) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > max_bytes) s = s.substr(0, max_bytes) + "...";
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

/// Runs gnuplot on `script` (stdin /dev/null; stdout and stderr to `log`). Throws naming `figure`
/// if it cannot start, or exits unsuccessfully (with what it printed).
inline void run_gnuplot(const std::string& figure, const std::filesystem::path& script,
                        const std::filesystem::path& log) {
  std::string program = gnuplot_program();
  std::string defaults = "--default-settings";  // ignore the user's ~/.gnuplot
  std::string script_arg = script.string();
  char* argv[] = {program.data(), defaults.data(), script_arg.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw error("plot " + figure + ": cannot run " + program + " (" + std::strerror(rc) +
                "); install gnuplot (Debian: gnuplot-nox) or set BITFIT_GNUPLOT");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw error("plot " + figure + ": waiting for gnuplot failed (" + std::strerror(errno) + ")");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  const std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                            : "signal " + std::to_string(WTERMSIG(status));
  const std::string said = read_text(log);
  throw error("plot " + figure + ": gnuplot failed (" + how + ")" + (said.empty() ? "" : ": " + said));
}

/// Pixel size of a figure (the SVG's nominal size is the same).
struct figure_size {
  int width = 900;
  int height = 560;
};

/// Renders one figure: `data` (datablock definitions) and `body` (settings and a plot command, no
/// terminal or output) become `<stem>.svg` and `<stem>.png`, both published only if gnuplot
/// succeeded. Returns the two paths.
inline std::vector<std::filesystem::path> render(const std::filesystem::path& stem, const std::string& data,
                                                 const std::string& body, figure_size size) {
  namespace fs = std::filesystem;
  const std::string figure = stem.string();
  const fs::path dir = stem.parent_path().empty() ? fs::path(".") : stem.parent_path();
  std::error_code ec;
  check(fs::is_directory(dir, ec), "plot " + figure + ": directory " + dir.string() + " does not exist");
  const fs::path svg = stem.string() + ".svg", png = stem.string() + ".png";
  const fs::path svg_tmp = temp_path_for(svg), png_tmp = temp_path_for(png);
  static std::atomic<unsigned> counter{0};
  const fs::path script = fs::temp_directory_path() / ("bitfit-plot-" + std::to_string(::getpid()) + "-" +
                                                       std::to_string(counter++) + ".gp");
  const fs::path log = script.string() + ".log";
  remove_at_exit cleanup{{script, log, svg_tmp, png_tmp}};

  const std::string size_spec = std::to_string(size.width) + "," + std::to_string(size.height);
  std::string s;
  s += "set encoding utf8\nset datafile missing '?'\n";
  s += data;
  s += "set terminal svg size " + size_spec + " dynamic enhanced font 'Sans,11' background '#ffffff'\n";
  s += "set output " + quote(svg_tmp.string()) + "\n" + body + "unset output\n";
  s += "set terminal pngcairo size " + size_spec + " enhanced font 'Sans,11' background '#ffffff'\n";
  s += "set output " + quote(png_tmp.string()) + "\n" + body + "unset output\n";
  write_file_atomic(script, s);

  run_gnuplot(figure, script, log);
  for (const auto& tmp : {svg_tmp, png_tmp})
    check(fs::file_size(tmp, ec) > 0 && !ec, "plot " + figure + ": gnuplot wrote nothing to " + tmp.string());
  publish_file(svg_tmp, svg);
  publish_file(png_tmp, png);
  return {svg, png};
}

/// The settings every figure shares: a light grid behind the data, a clean border.
inline std::string common_style() {
  return "set border 3 lw 1 lc rgb '#404040'\n"
         "set tics nomirror out\n"
         "set grid ytics lt 1 lw 1 lc rgb '#e4e4e4'\n"
         "set grid back\n";
}

/// Line colours for series: Paul Tol's "bright" scheme (colour-blind safe), then greys.
inline std::string series_colour(std::size_t i) {
  static const char* colours[] = {"#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB"};
  return i < std::size(colours) ? colours[i] : "#555555";
}

/// One learning-curve figure: a metric's value per epoch, one column per split.
struct curve_figure {
  std::vector<std::string> splits;                     // in plotting order
  std::map<double, std::map<std::string, double>> at;  // epoch -> split -> value
};

/// Order of the splits in a legend: "train" first, then the others by name.
inline bool split_before(const std::string& a, const std::string& b) {
  const bool ta = a.starts_with("train"), tb = b.starts_with("train");
  return ta != tb ? ta : a < b;
}

}  // namespace plot_detail

/// Learning curves of one run, from its metrics.json:
///   {"task": ..., "fine_tune_type": ..., "epoch": [{"epoch": 1, "train": {"accuracy": 0.9, ...},
///    "dev": {"accuracy": 0.8, ...}, "train_loss": 0.3, ...}, ...]}.
/// Every key starting with "train" or "dev" whose value is an object of metric -> number is a
/// split ("dev_matched" and "dev_mismatched" for MNLI); a number under "train_<metric>" or
/// "dev_<metric>" (such as "train_loss") is <metric> of split "train" or "dev". One figure per
/// metric, x = epoch, a line with points per split: `<out_prefix>_<metric>.svg` and `.png`
/// (the metric name made file-safe; "train_loss" gives `<out_prefix>_loss`). Returns the files
/// written. Throws bitfit::error if `metrics` has no "epoch" array or no metric at all, or if
/// gnuplot fails (naming the figure and quoting gnuplot).
inline std::vector<std::filesystem::path> plot_learning_curves(const nlohmann::json& metrics,
                                                               const std::filesystem::path& out_prefix) {
  using plot_detail::quote;
  check(metrics.is_object() && metrics.contains("epoch") && metrics["epoch"].is_array(),
        "plot_learning_curves: metrics has no 'epoch' array (is it a run's metrics.json?)");
  std::map<std::string, plot_detail::curve_figure> figures;  // metric -> figure
  auto add = [&](const std::string& metric, const std::string& split, double epoch, const nlohmann::json& v) {
    if (!v.is_number() || metric.empty()) return;
    auto& f = figures[metric];
    if (std::find(f.splits.begin(), f.splits.end(), split) == f.splits.end()) f.splits.push_back(split);
    f.at[epoch][split] = v.get<double>();
  };
  const auto& epochs = metrics["epoch"];
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    const auto& e = epochs[i];
    check(e.is_object(), "plot_learning_curves: metrics 'epoch' entry " + std::to_string(i) + " is not an object");
    const double epoch = e.contains("epoch") && e["epoch"].is_number() ? e["epoch"].get<double>() : double(i + 1);
    for (const auto& [key, v] : e.items()) {
      if (!key.starts_with("train") && !key.starts_with("dev")) continue;
      if (v.is_object()) {
        for (const auto& [metric, x] : v.items()) add(metric, key, epoch, x);
      } else if (v.is_number()) {
        const std::string split = key.starts_with("train_") ? "train" : key.starts_with("dev_") ? "dev" : "";
        if (!split.empty()) add(key.substr(split.size() + 1), split, epoch, v);
      }
    }
  }
  check(!figures.empty(), "plot_learning_curves: metrics has no per-epoch train or dev metrics to plot");

  auto text = [&](const char* field) {
    return metrics.contains(field) && metrics[field].is_string() ? metrics[field].get<std::string>() : std::string();
  };
  std::string run = text("task");
  if (const auto type = text("fine_tune_type"); !type.empty()) run += (run.empty() ? "" : " ") + type;

  std::vector<std::filesystem::path> written;
  for (auto& [metric, f] : figures) {
    std::sort(f.splits.begin(), f.splits.end(), plot_detail::split_before);
    std::string data = "$data << EOD\n";
    for (const auto& [epoch, values] : f.at) {
      data += plot_detail::number(epoch);
      for (const auto& split : f.splits) {
        const auto it = values.find(split);
        data += ' ';
        data += plot_detail::number(it == values.end() ? NAN : it->second);
      }
      data += "\n";
    }
    data += "EOD\n";
    const double first = f.at.begin()->first, last = f.at.rbegin()->first;
    const double pad = std::max(0.25, 0.04 * (last - first));
    std::string body = plot_detail::common_style();
    body += "set title " + quote((run.empty() ? "" : run + ": ") + metric) + " noenhanced font ',13'\n";
    body += "set xlabel 'epoch'\nset ylabel " + quote(metric) + " noenhanced\n";
    body += "set xrange [" + plot_detail::number(first - pad) + ":" + plot_detail::number(last + pad) + "]\n";
    body += (last - first <= 20 && f.at.size() > 1) || f.at.size() == 1 ? "set xtics 1\n" : "set xtics\n";
    body += "set key outside right top vertical Left reverse noenhanced width 1 box lc rgb '#c0c0c0'\n";
    body += "set offsets 0, 0, graph 0.05, graph 0.05\n";
    body += "plot ";
    for (std::size_t s = 0; s < f.splits.size(); ++s) {
      body += s ? ", \\\n     " : "";
      body += "$data using 1:" + std::to_string(s + 2) + " with linespoints lw 2 pt 7 ps 1.1 lc rgb '" +
              plot_detail::series_colour(s) + "' title " + quote(f.splits[s]);
    }
    body += "\n";
    const auto files = plot_detail::render(out_prefix.string() + "_" + plot_detail::file_part(metric), data, body,
                                           {900, 520});
    written.insert(written.end(), files.begin(), files.end());
  }
  return written;
}

/// The paper's Figure 1: a heatmap of (1/dim b)·‖b_F − b_0‖₁, rows the bias terms top to bottom
/// (bq, bk, bv, bm1, bLN1, bm2, bm3, bLN2), columns the layers 0 … L-1, a sequential palette from
/// zero to the largest change, each cell labelled with its value. Writes `<out_prefix>.svg` and
/// `.png`; returns them. Throws bitfit::error for an empty or malformed table, or if gnuplot fails.
inline std::vector<std::filesystem::path> plot_bias_change(const bias_change& change, const std::string& title,
                                                           const std::filesystem::path& out_prefix) {
  using plot_detail::quote;
  const std::size_t rows = change.terms.size(), cols = std::size_t(std::max(change.layers, 0));
  check(rows > 0 && cols > 0 && change.value.size() == rows * cols,
        "plot_bias_change " + out_prefix.string() + ": the table is empty or not terms x layers");
  double max = 0.0;
  for (double v : change.value)
    if (std::isfinite(v)) max = std::max(max, std::abs(v));
  const double top = max > 0 ? max : 1.0;
  const int decimals = plot_detail::decimals_for(max);

  // Matrix data: one line per term (row r at y = r), one column per layer (x = layer).
  std::string data = "$data << EOD\n";
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t l = 0; l < cols; ++l) {
      if (l) data += ' ';  // (appending, not `" " + s`: GCC 12 warns falsely on that, -Wrestrict)
      data += plot_detail::number(change.value[r * cols + l]);
    }
    data += "\n";
  }
  data += "EOD\n";

  std::string ytics = "set ytics (";
  for (std::size_t r = 0; r < rows; ++r)
    ytics += (r ? ", " : "") + quote(term_name(change.terms[r])) + " " + std::to_string(r);
  ytics += ") noenhanced scale 0\n";
  const std::string fmt = "%." + std::to_string(decimals) + "f";
  const double light_below = 0.55 * top;  // dark text on light cells, white on dark ones
  const int label_font = cols <= 12 ? 10 : cols <= 24 ? 8 : 7;

  std::string body;
  body += "set title " + quote(title) + " noenhanced font ',13'\n";
  body += "set xlabel 'layer'\nset ylabel 'bias term'\n";
  body += "set xrange [-0.5:" + std::to_string(cols) + "-0.5]\n";
  body += "set yrange [" + std::to_string(rows) + "-0.5:-0.5]\n";  // reversed: bq on top
  body += "set xtics 1 scale 0\n" + ytics;
  body += "set border 15 lw 1 lc rgb '#404040'\nunset grid\nunset key\n";
  body += "set palette defined (0 '#f7fbff', 1 '#deebf7', 2 '#c6dbef', 3 '#9ecae1', 4 '#6baed6', "
          "5 '#4292c6', 6 '#2171b5', 7 '#08519c', 8 '#08306b')\n";
  body += "set cbrange [0:" + plot_detail::number(top) + "]\n";
  body += "set cblabel 'mean |b_F − b_0| per entry of b'\n";
  body += "set format cb '" + fmt + "'\n";
  // Right of the cells: a 16 px gap, the 20 px colour box, its tic labels (~9 px a character at
  // 11 pt) and its rotated label.
  const int width = std::clamp(260 + 70 * int(cols), 620, 1800);
  char top_text[64];
  const int tic_chars = std::snprintf(top_text, sizeof top_text, fmt.c_str(), top);
  const int reserved = 16 + 20 + 14 + 9 * tic_chars + 40;
  const double px = 1.0 / width;
  body += "set rmargin at screen " + plot_detail::number(1 - reserved * px) + "\n";
  body += "set colorbox user origin screen " + plot_detail::number(1 - (reserved - 16) * px) +
          ", graph 0 size screen " + plot_detail::number(20 * px) + ", graph 1\n";
  body += "fmt = '" + fmt + "'\n";
  body += "cell(v) = (v == v) ? sprintf(fmt, v) : 'n/a'\n";  // NaN != NaN
  body += "plot $data matrix with image pixels, \\\n"
          "     $data matrix using 1:2:($3 < " + plot_detail::number(light_below) + " || $3 != $3 ? cell($3) : '') "
          "with labels font '," + std::to_string(label_font) + "' tc rgb '#202020', \\\n"
          "     $data matrix using 1:2:($3 >= " + plot_detail::number(light_below) + " ? cell($3) : '') "
          "with labels font '," + std::to_string(label_font) + "' tc rgb '#ffffff'\n";
  return plot_detail::render(out_prefix, data, body, {width, 520});
}

/// A grouped bar chart of a reproduction table: one group per `groups` entry (a task) along x,
/// one bar per `series` in each (e.g. "paper Full-FT", "paper BitFit", "ours Full-FT", "ours
/// BitFit"), coloured by series, with an error bar where `err` is given, the value printed above
/// each bar, and no bar where the value is NaN (not run yet). The y axis starts at zero (or the
/// lowest negative value). Writes `<out_prefix>.svg` and `.png`; returns them. Throws
/// bitfit::error if a group's sizes do not match `series`, an error is negative, or gnuplot fails.
inline std::vector<std::filesystem::path> plot_results_bars(const std::vector<bar_group>& groups,
                                                            const std::vector<std::string>& series,
                                                            const std::string& title, const std::string& ylabel,
                                                            const std::filesystem::path& out_prefix) {
  using plot_detail::number;
  using plot_detail::quote;
  const std::string what = "plot_results_bars " + out_prefix.string();
  check(!groups.empty() && !series.empty(), what + ": needs at least one group and one series");
  const std::size_t n = series.size();
  double lo = 0.0, hi = 0.0, max_abs = 0.0;
  for (const auto& g : groups) {
    check(g.value.size() == n, what + ": group '" + g.name + "' has " + std::to_string(g.value.size()) +
                                   " values for " + std::to_string(n) + " series");
    check(g.err.empty() || g.err.size() == n, what + ": group '" + g.name + "' has " +
                                                  std::to_string(g.err.size()) + " errors for " +
                                                  std::to_string(n) + " series");
    for (std::size_t s = 0; s < n; ++s) {
      const double v = g.value[s], e = g.err.empty() || !std::isfinite(g.err[s]) ? 0.0 : g.err[s];
      check(e >= 0, what + ": group '" + g.name + "', series '" + series[s] + "': negative error");
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v - e), hi = std::max(hi, v + e), max_abs = std::max(max_abs, std::abs(v));
    }
  }
  if (hi <= lo) hi = lo + 1.0;
  const int decimals = plot_detail::decimals_for(max_abs);

  // Bars of group g sit in [g - 0.4, g + 0.4]; series s at the centre of its slot.
  const double slot = 0.8 / double(n), box = 0.85 * slot;
  std::string data;
  for (std::size_t s = 0; s < n; ++s) {
    data += "$s" + std::to_string(s) + " << EOD\n";
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const double x = double(g) - 0.4 + (double(s) + 0.5) * slot;
      const double v = groups[g].value[s];
      const double e = groups[g].err.empty() ? NAN : groups[g].err[s];
      const double tip = std::isfinite(e) ? e : 0.0;
      const double above = std::isfinite(v) && v >= 0 ? v + tip : NAN, below = std::isfinite(v) && v < 0 ? v - tip : NAN;
      // x, value, error (or ?), where the value label goes: above a bar (and its error bar), or below a negative one
      data += number(x) + " " + number(v) + " " + number(std::isfinite(v) ? e : NAN) + " " + number(above) + " " +
              number(below) + "\n";
    }
    data += "EOD\n";
  }

  // Group names tilted when the longest would not fit under its group (12 pt, ~0.6 em a character).
  const int width = std::clamp(200 + int(groups.size() * n) * 48, 640, 1800);
  std::size_t name_chars = 0;
  for (const auto& g : groups) name_chars = std::max(name_chars, g.name.size());
  const bool tilt = double(name_chars) * 0.6 * 12 * 96.0 / 72.0 > 0.95 * (width - 160) / (double(groups.size()) + 0.2);
  std::string xtics = "set xtics (";
  for (std::size_t g = 0; g < groups.size(); ++g) xtics += (g ? ", " : "") + quote(groups[g].name) + " " + std::to_string(g);
  xtics += ") noenhanced scale 0 font ',12'" + std::string(tilt ? " rotate by 25 right" : "") + "\n";
  const double span = hi - lo;
  std::string body = plot_detail::common_style();
  body += "set title " + quote(title) + " noenhanced font ',13'\n";
  body += "set ylabel " + quote(ylabel) + " noenhanced\n";
  body += xtics;
  body += "set xrange [-0.6:" + number(double(groups.size()) - 0.4) + "]\n";
  body += "set yrange [" + number(lo < 0 ? lo - 0.12 * span : 0.0) + ":" + number(hi + 0.1 * span) + "]\n";
  body += "set xzeroaxis lt -1 lw 1\n";
  body += "set key outside bottom center horizontal noenhanced samplen 1.5 width 2\n";
  body += "set boxwidth " + number(box) + " absolute\n";
  // Value labels horizontal when the longest fits in a bar's slot, else rotated.
  const double slot_px = (width - 160) / (double(groups.size()) + 0.2) * slot;
  const int label_font = slot_px >= 40 ? 9 : 8;
  const std::string fmt = "%." + std::to_string(decimals) + "f";
  std::size_t label_chars = 0;
  for (const auto& g : groups)
    for (double v : g.value)
      if (std::isfinite(v)) {
        char buf[64];
        label_chars = std::max(label_chars, std::size_t(std::snprintf(buf, sizeof buf, fmt.c_str(), v)));
      }
  const double label_px = double(label_chars) * 0.58 * label_font * 96.0 / 72.0 + 4;  // ~0.58 em per digit
  const bool rotate = label_px > slot_px;
  const std::string label_style = " font '," + std::to_string(label_font) + "' tc rgb '#202020' notitle";
  std::string plot = "plot ";
  for (std::size_t s = 0; s < n; ++s) {
    const std::string d = "$s" + std::to_string(s);
    if (s) plot += ", \\\n     ";
    plot += d + " using 1:2 with boxes fs solid 0.9 border lc rgb '#303030' lc rgb '" + plot_detail::series_colour(s) +
            "' title " + quote(series[s]);
    // Error bars as capped vectors: `with yerrorbars` paints a white point over the bar top.
    plot += ", \\\n     " + d + " using 1:($2-$3):(0):(2*$3) with vectors heads size screen 0.006,90 "
            "lc rgb '#202020' lw 1.5 notitle";
    plot += ", \\\n     " + d + " using 1:4:(sprintf('" + fmt + "', $2)) with labels " +
            (rotate ? "rotate by 90 left offset 0,0.4" : "center offset 0,0.7") + label_style;
    if (lo < 0)
      plot += ", \\\n     " + d + " using 1:5:(sprintf('" + fmt + "', $2)) with labels " +
              (rotate ? "rotate by 90 right offset 0,-0.4" : "center offset 0,-0.7") + label_style;
  }
  body += plot + "\n";
  return plot_detail::render(out_prefix, data, body, {width, 540});
}

}  // namespace bitfit::cli
