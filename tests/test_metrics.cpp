// The GLUE metrics against scikit-learn and SciPy on the same float32 inputs (ties, constant
// inputs, empty classes, multi-class MCC, length 1 and 2), and the metrics of each GLUE task.
// Goldens: tests/data/metrics/goldens.json, made by tools/goldens/make_metric_goldens.py.
#include "test_support.hpp"

#include <bitfit/core/json.hpp>
#include <bitfit/train/metrics.hpp>
#include <bitfit/train/trainer.hpp>  // its accuracy(pred, encoded_examples) must stay callable beside ours

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

using namespace bitfit;

namespace {

using metric_fn = std::function<double(std::span<const float>, std::span<const float>)>;

const std::map<std::string, metric_fn>& metrics_by_name() {
  static const std::map<std::string, metric_fn> m = {
      {"accuracy", [](auto p, auto g) { return accuracy(p, g); }},
      {"f1", [](auto p, auto g) { return f1_score(p, g); }},
      {"mcc", [](auto p, auto g) { return matthews_corrcoef(p, g); }},
      {"pearson", [](auto p, auto g) { return pearson_corr(p, g); }},
      {"spearmanr", [](auto p, auto g) { return spearman_corr(p, g); }},
  };
  return m;
}

// Within 1e-12 relative (exactly equal at 0); a NaN golden (JSON null) wants NaN.
bool matches(double got, const nlohmann::json& want) {
  if (want.is_null()) return std::isnan(got);
  const double w = want.get<double>();
  return std::abs(got - w) <= 1e-12 * std::abs(w);
}

}  // namespace

TEST_CASE("metrics: every golden of scikit-learn and SciPy within 1e-12 relative") {
  const auto doc = parse_json_file(test::golden_dir() / "metrics" / "goldens.json");
  const auto& cases = doc.at("cases");
  REQUIRE(cases.size() == 22);  // an emptied or truncated file must not pass as "nothing differs"
  std::size_t compared = 0, nans = 0;
  for (const auto& c : cases) {
    const auto name = c.at("name").get<std::string>();
    const auto predictions = c.at("predictions").get<std::vector<float>>();
    const auto golds = c.at("golds").get<std::vector<float>>();
    REQUIRE(predictions.size() == golds.size());
    for (const auto& [metric, want] : c.at("metrics").items()) {
      CAPTURE(name);
      CAPTURE(metric);
      REQUIRE(metrics_by_name().count(metric) == 1);
      const double got = metrics_by_name().at(metric)(predictions, golds);
      const std::string golden = json_excerpt(want);
      CAPTURE(got);
      CAPTURE(golden);
      CHECK(matches(got, want));
      ++compared, nans += want.is_null();
    }
  }
  CHECK(compared == 74);
  CHECK(nans == 14);
}

TEST_CASE("metrics: hand-checked values and the conventions of the edge cases") {
  const std::vector<float> gold = {1, 0, 1, 1, 0, 0}, pred = {1, 0, 0, 1, 1, 0};
  CHECK(accuracy(pred, gold) == doctest::Approx(4.0 / 6));
  CHECK(f1_score(pred, gold) == doctest::Approx(2.0 * 2 / (2 * 2 + 1 + 1)));
  CHECK(matthews_corrcoef(pred, gold) == doctest::Approx(1.0 / 3));  // (2*2 - 1*1) / sqrt(3*3*3*3)
  // A prediction that is no class id is wrong, never rounded; NaN predictions match nothing.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(accuracy(std::vector<float>{0.5f, nan, 1.0f}, std::vector<float>{0, 0, 1}) == doctest::Approx(1.0 / 3));
  CHECK(matthews_corrcoef(std::vector<float>{nan, nan, 1, 0}, std::vector<float>{0, 1, 1, 0}) ==
        doctest::Approx(matthews_corrcoef(std::vector<float>{7, 7, 1, 0}, std::vector<float>{0, 1, 1, 0})));
  // Spearman only sees order: any increasing map of the predictions keeps it, ties stay ties.
  const std::vector<float> x = {0.2f, 1.0f, 1.0f, 3.5f, 2.0f}, y = {0.0f, 2.0f, 1.0f, 5.0f, 4.0f};
  std::vector<float> x_cubed;
  for (float v : x) x_cubed.push_back(v * v * v);
  CHECK(spearman_corr(x_cubed, y) == doctest::Approx(spearman_corr(x, y)));
  CHECK(pearson_corr(x_cubed, y) != doctest::Approx(pearson_corr(x, y)));
  CHECK(std::isnan(pearson_corr(std::vector<float>{1, nan, 2}, std::vector<float>{1, 2, 3})));
  CHECK(std::isnan(spearman_corr(std::vector<float>{1, nan, 2}, std::vector<float>{1, 2, 3})));
}

TEST_CASE("metrics: inputs of different lengths, empty inputs and NaN gold class ids are errors") {
  const std::vector<float> two = {0, 1}, three = {0, 1, 1}, none;
  CHECK(test::error_of([&] { accuracy(two, three); }).find("accuracy: 2 predictions but 3 gold values") != std::string::npos);
  CHECK(test::error_of([&] { spearman_corr(three, two); }).find("spearman_corr: 3 predictions") != std::string::npos);
  CHECK(test::error_of([&] { f1_score(none, none); }) == "f1_score: no examples");
  CHECK(test::error_of([&] { pearson_corr(none, none); }) == "pearson_corr: no examples");
  const std::vector<float> nan_gold = {0, std::numeric_limits<float>::quiet_NaN()};
  CHECK(test::error_of([&] { matthews_corrcoef(two, nan_gold); }) == "matthews_corrcoef: gold class id 1 is NaN");
}

TEST_CASE("metrics: each GLUE task reports the metrics of the paper's Table 5") {
  const std::map<std::string, std::pair<std::vector<std::string>, std::string>> expected = {
      {"cola", {{"mcc"}, "mcc"}},
      {"mrpc", {{"accuracy", "f1"}, "f1"}},
      {"qqp", {{"accuracy", "f1"}, "f1"}},
      {"stsb", {{"pearson", "spearmanr"}, "spearmanr"}},
      {"sst2", {{"accuracy"}, "accuracy"}},
      {"rte", {{"accuracy"}, "accuracy"}},
      {"qnli", {{"accuracy"}, "accuracy"}},
      {"wnli", {{"accuracy"}, "accuracy"}},
      {"mnli", {{"accuracy"}, "accuracy"}},
  };
  const std::vector<float> pred = {1, 0, 0, 1, 1, 0, 2}, gold = {1, 0, 1, 1, 0, 0, 2};
  for (const auto& [name, names_primary] : expected) {
    CAPTURE(name);
    const auto task = glue_task_named(name);
    const auto got = glue_metrics(task, pred, gold);
    std::vector<std::string> names;
    for (const auto& [metric, value] : got) {
      names.push_back(metric);
      CHECK(value == doctest::Approx(metrics_by_name().at(metric)(pred, gold)));  // the named function's value
    }
    CHECK(names == names_primary.first);
    CHECK(primary_metric(task) == names_primary.second);
  }
}

TEST_CASE("metrics: span accuracy and the trainer's accuracy(pred, encoded examples) resolve unambiguously") {
  std::vector<encoded_example> xs(2);
  xs[0].label = 1, xs[1].label = 0;
  const std::vector<float> pred = {1.0f, 1.0f}, gold = {1.0f, 0.0f};
  CHECK(accuracy(pred, xs) == doctest::Approx(0.5));
  CHECK(accuracy(pred, gold) == doctest::Approx(0.5));
  CHECK(accuracy(std::span<const float>(pred), std::span<const float>(gold)) == doctest::Approx(0.5));
}
