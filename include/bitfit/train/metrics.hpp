#pragma once
/// @file metrics.hpp
/// The evaluation metrics of the BitFit paper's Table 5 (the GLUE metrics), as free functions on
/// predictions and gold values, computed in double and matching scikit-learn / SciPy:
/// accuracy, F1 and Matthews correlation (sklearn.metrics accuracy_score, f1_score,
/// matthews_corrcoef) on class ids, Pearson and Spearman correlation (scipy.stats pearsonr,
/// spearmanr) on real values. tests/data/metrics/goldens.json holds the reference values
/// (tools/goldens/make_metric_goldens.py).
///
/// Classification metrics take class ids stored as floats (0.0f, 1.0f, ..., as predict() gives
/// them) and compare them as floats: a prediction that is no class id (NaN, 0.5) is wrong, never
/// rounded. A NaN gold class id, inputs of different lengths and empty inputs are errors.

#include <bitfit/core/error.hpp>
#include <bitfit/data/glue.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bitfit {

namespace detail {

/// Checks that `predictions` and `golds` pair up and are not empty.
inline void check_metric_inputs(const char* metric, std::span<const float> predictions, std::span<const float> golds) {
  check(predictions.size() == golds.size(), std::string(metric) + ": " + std::to_string(predictions.size()) +
                                                " predictions but " + std::to_string(golds.size()) + " gold values");
  check(!predictions.empty(), std::string(metric) + ": no examples");
}

/// check_metric_inputs() plus: every gold value is a class id, not NaN.
inline void check_class_inputs(const char* metric, std::span<const float> predictions, std::span<const float> golds) {
  check_metric_inputs(metric, predictions, golds);
  for (std::size_t i = 0; i < golds.size(); ++i)
    check(!std::isnan(golds[i]), std::string(metric) + ": gold class id " + std::to_string(i) + " is NaN");
}

/// Ranks from 1, ties given the average of the ranks they span (scipy.stats.rankdata "average").
inline std::vector<double> average_ranks(std::span<const float> x) {
  std::vector<std::size_t> order(x.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return x[i] < x[j]; });
  std::vector<double> rank(x.size());
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first + 1;
    while (last < order.size() && x[order[last]] == x[order[first]]) ++last;
    const double mean_rank = 0.5 * double(first + 1 + last);  // ranks first+1 .. last
    for (std::size_t k = first; k < last; ++k) rank[order[k]] = mean_rank;
    first = last;
  }
  return rank;
}

/// Pearson's r of two equally long double sequences, clipped to [-1, 1] as scipy does; NaN when
/// either is constant (or shorter than 2).
inline double pearson_of(const std::vector<double>& x, const std::vector<double>& y) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto constant = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [&](double e) { return e == v.front(); });
  };
  if (x.size() < 2 || constant(x) || constant(y)) return nan;
  const double n = double(x.size());
  const double mean_x = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double mean_y = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mean_x, dy = y[i] - mean_y;
    sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
  }
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}

}  // namespace detail

/// @brief Fraction of predictions equal to their gold class id (sklearn accuracy_score).
/// @param predictions class ids as floats; @param golds class ids as floats, same length, not empty.
inline double accuracy(std::span<const float> predictions, std::span<const float> golds) {
  detail::check_class_inputs("accuracy", predictions, golds);
  std::size_t correct = 0;
  for (std::size_t i = 0; i < golds.size(); ++i) correct += predictions[i] == golds[i];
  return double(correct) / double(golds.size());
}

/// @brief Binary F1 with class 1 as the positive class (sklearn f1_score, pos_label=1): the
/// harmonic mean of precision and recall, 2 tp / (2 tp + fp + fn). Every value other than 1 counts
/// as negative. 0 when there is no true positive (also when neither side has a positive), as
/// sklearn's default zero_division gives.
/// @param predictions class ids as floats; @param golds class ids as floats, same length, not empty.
inline double f1_score(std::span<const float> predictions, std::span<const float> golds) {
  detail::check_class_inputs("f1_score", predictions, golds);
  std::size_t tp = 0, fp = 0, fn = 0;
  for (std::size_t i = 0; i < golds.size(); ++i) {
    const bool pred_pos = predictions[i] == 1.0f, gold_pos = golds[i] == 1.0f;
    tp += pred_pos && gold_pos, fp += pred_pos && !gold_pos, fn += !pred_pos && gold_pos;
  }
  return tp == 0 ? 0.0 : 2.0 * double(tp) / double(2 * tp + fp + fn);
}

/// @brief Matthews correlation coefficient, binary or multi-class (sklearn matthews_corrcoef): the
/// classes are the distinct values of both inputs; a NaN prediction is a class of its own that
/// matches no gold value. 0 when the denominator is 0 (one side has a single class), as sklearn.
/// @param predictions class ids as floats; @param golds class ids as floats, same length, not empty.
inline double matthews_corrcoef(std::span<const float> predictions, std::span<const float> golds) {
  detail::check_class_inputs("matthews_corrcoef", predictions, golds);
  std::vector<float> classes;
  for (std::span<const float> side : {predictions, golds})
    for (float v : side)
      if (!std::isnan(v)) classes.push_back(v);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  const auto class_of = [&](float v) {  // NaN: the extra class at the end
    return std::isnan(v) ? classes.size() : std::size_t(std::lower_bound(classes.begin(), classes.end(), v) - classes.begin());
  };
  // Row sums (gold) and column sums (predicted) of the confusion matrix, and its trace.
  std::vector<double> gold_sum(classes.size() + 1, 0.0), pred_sum(classes.size() + 1, 0.0);
  double correct = 0;
  for (std::size_t i = 0; i < golds.size(); ++i) {
    gold_sum[class_of(golds[i])] += 1, pred_sum[class_of(predictions[i])] += 1;
    correct += predictions[i] == golds[i];
  }
  const double n = double(golds.size());
  double gold_dot_pred = 0, gold_dot_gold = 0, pred_dot_pred = 0;
  for (std::size_t k = 0; k < gold_sum.size(); ++k) {
    gold_dot_pred += gold_sum[k] * pred_sum[k];
    gold_dot_gold += gold_sum[k] * gold_sum[k];
    pred_dot_pred += pred_sum[k] * pred_sum[k];
  }
  const double cov_gold_pred = correct * n - gold_dot_pred;
  const double cov_pred_pred = n * n - pred_dot_pred, cov_gold_gold = n * n - gold_dot_gold;
  if (cov_pred_pred * cov_gold_gold == 0) return 0.0;
  return cov_gold_pred / std::sqrt(cov_gold_gold * cov_pred_pred);
}

/// @brief Pearson correlation of real-valued predictions and gold values (scipy.stats.pearsonr).
/// NaN when either input is constant, as scipy returns, and for a single pair (where scipy raises:
/// one point is constant too); a NaN in the input gives NaN.
inline double pearson_corr(std::span<const float> predictions, std::span<const float> golds) {
  detail::check_metric_inputs("pearson_corr", predictions, golds);
  return detail::pearson_of({predictions.begin(), predictions.end()}, {golds.begin(), golds.end()});
}

/// @brief Spearman rank correlation (scipy.stats.spearmanr): Pearson's r of the ranks, ties
/// given their average rank. NaN when either input is constant or has a single value, and when
/// either contains a NaN (scipy's nan_policy "propagate").
inline double spearman_corr(std::span<const float> predictions, std::span<const float> golds) {
  detail::check_metric_inputs("spearman_corr", predictions, golds);
  const auto has_nan = [](std::span<const float> v) { return std::any_of(v.begin(), v.end(), [](float e) { return std::isnan(e); }); };
  if (has_nan(predictions) || has_nan(golds)) return std::numeric_limits<double>::quiet_NaN();
  return detail::pearson_of(detail::average_ranks(predictions), detail::average_ranks(golds));
}

/// @brief The GLUE metrics of `task`, by name, in this order: cola {mcc}; mrpc, qqp {accuracy, f1};
/// stsb {pearson, spearmanr}; every other task {accuracy}. `predictions` and `golds` are class ids
/// as floats, or STS-B scores.
inline std::vector<std::pair<std::string, double>> glue_metrics(const glue_task& task, std::span<const float> predictions,
                                                                std::span<const float> golds) {
  if (task.name == "cola") return {{"mcc", matthews_corrcoef(predictions, golds)}};
  if (task.name == "mrpc" || task.name == "qqp")
    return {{"accuracy", accuracy(predictions, golds)}, {"f1", f1_score(predictions, golds)}};
  if (task.name == "stsb")
    return {{"pearson", pearson_corr(predictions, golds)}, {"spearmanr", spearman_corr(predictions, golds)}};
  return {{"accuracy", accuracy(predictions, golds)}};
}

/// @brief The metric the BitFit paper reports for `task` in Table 5 (one of the names of
/// glue_metrics()): cola mcc, mrpc f1, qqp f1, stsb spearmanr, every other task accuracy.
inline std::string primary_metric(const glue_task& task) {
  if (task.name == "cola") return "mcc";
  if (task.name == "mrpc" || task.name == "qqp") return "f1";
  if (task.name == "stsb") return "spearmanr";
  return "accuracy";
}

}  // namespace bitfit
