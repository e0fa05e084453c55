// AdamW / Adam steps and global-norm clipping against torch.optim on the same gradients.
// Goldens: tests/data/adamw, made by tools/goldens/make_adamw_goldens.py (float64). The float32
// per-group trajectories (tests/data/adamw_groups) are checked in test_trainer.cpp.
#include "test_support.hpp"

#include <bitfit/train/adamw.hpp>

#include <doctest/doctest.h>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

xt::xarray<double> load(const std::string& c, const std::string& f) {
  return xt::load_npy<double>((bitfit::test::golden_dir() / "adamw" / c / f).string());
}

// Runs 5 steps of a case and returns the largest deviation from torch's parameters.
double run_case(const std::string& name, bool decoupled, double weight_decay, bool clip) {
  constexpr int P = 3, S = 5;
  std::vector<std::vector<double>> params(P);
  std::vector<bitfit::adam_moments<double>> moments;
  std::vector<xt::xarray<double>> grads(P), expect(P), clipped(P);
  for (int i = 0; i < P; ++i) {
    auto init = load(name, "param" + std::to_string(i) + "_init.npy");
    params[std::size_t(i)].assign(init.begin(), init.end());
    moments.emplace_back(init.size());
    grads[std::size_t(i)] = load(name, "grad" + std::to_string(i) + ".npy");
    expect[std::size_t(i)] = load(name, "param" + std::to_string(i) + ".npy");
    if (clip) clipped[std::size_t(i)] = load(name, "grad" + std::to_string(i) + "_clipped.npy");
  }
  const auto norms = clip ? load(name, "total_norm.npy") : xt::xarray<double>();
  bitfit::adamw_config cfg;
  cfg.decoupled = decoupled;
  cfg.weight_decay = weight_decay;
  double worst = 0;
  for (int t = 1; t <= S; ++t) {
    std::vector<std::vector<double>> g(P);
    std::vector<std::span<double>> spans;
    for (int i = 0; i < P; ++i) {
      auto row = xt::eval(xt::view(grads[std::size_t(i)], t - 1));
      g[std::size_t(i)].assign(row.begin(), row.end());
      spans.emplace_back(g[std::size_t(i)]);
    }
    if (clip) {
      const double norm = bitfit::clip_global_norm<double>(spans, 1.0);
      CHECK(norm == doctest::Approx(norms(t - 1)).epsilon(1e-12));
      for (int i = 0; i < P; ++i) {
        auto row = xt::eval(xt::view(clipped[std::size_t(i)], t - 1));
        for (std::size_t k = 0; k < row.size(); ++k) CHECK(std::fabs(g[std::size_t(i)][k] - row(k)) < 1e-15);
      }
    }
    for (int i = 0; i < P; ++i) {
      bitfit::adamw_update<double>(params[std::size_t(i)], g[std::size_t(i)], moments[std::size_t(i)], cfg, 1e-3, t);
      auto row = xt::eval(xt::view(expect[std::size_t(i)], t - 1));
      for (std::size_t k = 0; k < row.size(); ++k) worst = std::max(worst, std::fabs(params[std::size_t(i)][k] - row(k)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("AdamW with decoupled weight decay equals torch.optim.AdamW over 5 steps") {
  CHECK(run_case("decay", true, 0.01, false) < 1e-14);
}
TEST_CASE("AdamW without weight decay equals torch.optim.AdamW") {
  CHECK(run_case("nodecay", true, 0.0, false) < 1e-14);
}
TEST_CASE("Adam equals torch.optim.Adam") {
  CHECK(run_case("adam", false, 0.0, false) < 1e-14);
}
TEST_CASE("global-norm clipping then AdamW equals clip_grad_norm_ + torch.optim.AdamW") {
  CHECK(run_case("clip", true, 0.01, true) < 1e-14);
}
TEST_CASE("clipping leaves gradients below the threshold untouched") {
  std::vector<float> a = {0.3f, 0.4f};
  std::vector<std::span<float>> s = {a};
  CHECK(bitfit::clip_global_norm<float>(s, 1.0) == doctest::Approx(0.5));
  CHECK(a[0] == 0.3f);
}
TEST_CASE("float moments weigh the gradient by 1 - beta rounded from double, as torch does (not 1 - 0.999f)") {
  // 1.0f - 0.999f is 1.3e-5 off 0.001: a float AdamW drifted from torch's float32 one by ~1e-6
  // relative in three steps (tests/test_trainer.cpp compares whole float32 trajectories).
  std::vector<float> p = {1.0f}, g = {1.0f};
  bitfit::adam_moments<float> m(1);
  bitfit::adamw_update<float>(p, g, m, bitfit::adamw_config{}, 1e-3, 1);
  CHECK(m.m[0] == float(1.0 - 0.9));
  CHECK(m.v[0] == float(1.0 - 0.999));
  CHECK(m.v[0] != 1.0f - 0.999f);
}
