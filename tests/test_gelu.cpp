// gelu_forward / gelu_backward: both forms (erf, tanh) against reference values, and a
// finite-difference check of dinp for each; the vectorised float path against a double std::erf /
// std::tanh reference, element by element whatever the position or thread count; and
// bias_gelu_forward against the unfused bias add + GELU, with a finite-difference check of the
// backward its cache feeds (gelu_backward on pre).
#include <bitfit/ops/gelu.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>
#include <omp.h>

#include <cfloat>
#include <cmath>
#include <sstream>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

TEST_CASE("gelu_forward: the exact erf form and the tanh approximation") {
  const std::vector<double> x = {-3.0, -1.0, 0.0, 0.5, 1.0, 2.0};
  // x·Φ(x) (Φ from the normal CDF), and 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), both from
  // Python's math module; the two forms differ at ~1e-4.
  const std::vector<double> want_erf = {-0.00404969409489031, -0.15865525393145707, 0.0,
                                        0.34573123063700656, 0.8413447460685429, 1.9544997361036416};
  const std::vector<double> want_tanh = {-0.0036373920817729943, -0.15880800939172324, 0.0,
                                         0.34571400982514394, 0.8411919906082768, 1.954597694087775};
  std::vector<double> y(x.size());
  gelu_forward(y.data(), x.data(), std::ptrdiff_t(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == doctest::Approx(want_erf[i]).epsilon(1e-13));
  gelu_forward(y.data(), x.data(), std::ptrdiff_t(x.size()), gelu_kind::tanh);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == doctest::Approx(want_tanh[i]).epsilon(1e-13));
}

TEST_CASE("gelu_backward matches finite differences and may alias dout") {
  for (const gelu_kind kind : {gelu_kind::erf, gelu_kind::tanh}) {
    CAPTURE(int(kind));
    test::rng r(31);
    auto x = r.vector(40, -4, 4), R = r.vector(40);
    std::vector<double> y(x.size()), dx(x.size());
    auto loss = [&] {
      gelu_forward(y.data(), x.data(), std::ptrdiff_t(x.size()), kind);
      return test::dot(R, y);
    };
    gelu_backward(dx.data(), R.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    check_gradient("dinp", loss, x.data(), dx.data(), dx.size());

    auto d = R;  // in place: dinp == dout
    gelu_backward(d.data(), d.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    CHECK(d == dx);
    // The backward overwrites: stale values in dinp do not leak in.
    auto stale = r.vector(x.size());
    gelu_backward(stale.data(), R.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    CHECK(stale == dx);
  }
}

namespace {
double reference_gelu(double x, gelu_kind kind) {
  if (kind == gelu_kind::erf) return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
double reference_gelu_grad(double x, gelu_kind kind) {
  if (kind == gelu_kind::erf) return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
  const double t = std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * std::sqrt(2 / M_PI) * (1 + 3 * 0.044715 * x * x);
}

/// Every float in [-10, 10] on a 2^-10 grid, then ± magnitudes from 1e-30 to 1e-2.
std::vector<float> gelu_inputs() {
  std::vector<float> x;
  for (int i = -10 * 1024; i <= 10 * 1024; ++i) x.push_back(float(i) / 1024.0f);
  for (float v = 1e-30f; v < 1e-2f; v *= 1.05f) x.push_back(v), x.push_back(-v);
  return x;
}

/// Calls f() with OpenMP limited to `threads` threads.
template <class F>
void with_threads(int threads, F&& f) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  f();
  omp_set_num_threads(before);
}
}  // namespace

TEST_CASE("float gelu_forward / gelu_backward are within a few ulp of a double reference") {
  // Eigen's float erf and tanh are rational approximations within a few ulp of the exact values
  // (measured worst case here: 1.7 ulp(|x|) forward, 1.6 ulp(1) for the erf backward). GELU's
  // error scales with |x| (0.5·x·(1 + erf) cancels for x < 0), hence the bound in units of
  // FLT_EPSILON·|x|. The tanh backward loses more: 1 + t and 1 − t² cancel near t = −1, where
  // tanh's few ulp get multiplied by x·du ≈ 16 at x ≈ −5 (measured worst case 30 ulp(1); the
  // former std::tanh loop had 5).
  const auto x = gelu_inputs();
  const std::vector<float> ones(x.size(), 1.0f);
  std::vector<float> y(x.size()), dx(x.size());
  for (const gelu_kind kind : {gelu_kind::erf, gelu_kind::tanh}) {
    CAPTURE(int(kind));
    gelu_forward(y.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    gelu_backward(dx.data(), ones.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    const double grad_ulps = kind == gelu_kind::erf ? 4 : 48;
    std::size_t bad_forward = 0, bad_backward = 0;
    std::ostringstream first;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = reference_gelu(x[i], kind), want_grad = reference_gelu_grad(x[i], kind);
      if (!(std::abs(y[i] - want) <= 4 * FLT_EPSILON * std::abs(double(x[i]))) && bad_forward++ < 5)
        first << "\n  forward at x = " << x[i] << ": " << y[i] << " vs " << want;
      if (!(std::abs(dx[i] - want_grad) <= grad_ulps * FLT_EPSILON) && bad_backward++ < 5)
        first << "\n  backward at x = " << x[i] << ": " << dx[i] << " vs " << want_grad;
    }
    INFO(first.str());
    CHECK(bad_forward == 0);
    CHECK(bad_backward == 0);
    // Saturation: gelu(x) = x for large x, 0 (to float precision) for very negative x.
    const float big[] = {20.0f, -20.0f, 1e30f};
    float out[3];
    gelu_forward(out, big, 3, kind);
    CHECK(out[0] == 20.0f);
    CHECK(std::abs(out[1]) <= 1e-30f);
    CHECK(out[2] == 1e30f);
  }
}

TEST_CASE("float GELU is element-wise pure: position, length and thread count do not matter") {
  // 150001 elements (> 65536: the OpenMP path; not a multiple of the block, so there is a tail).
  test::rng r(17);
  std::vector<float> x(150001);
  for (auto& v : x) v = float(r.uniform(-6, 6));
  const std::vector<float> dy(x.size(), 0.75f);
  for (const gelu_kind kind : {gelu_kind::erf, gelu_kind::tanh}) {
    CAPTURE(int(kind));
    std::vector<float> y2(x.size()), y1(x.size()), d2(x.size()), d1(x.size());
    with_threads(2, [&] {
      gelu_forward(y2.data(), x.data(), std::ptrdiff_t(x.size()), kind);
      gelu_backward(d2.data(), dy.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    });
    with_threads(1, [&] {
      gelu_forward(y1.data(), x.data(), std::ptrdiff_t(x.size()), kind);
      gelu_backward(d1.data(), dy.data(), x.data(), std::ptrdiff_t(x.size()), kind);
    });
    CHECK(y1 == y2);
    CHECK(d1 == d2);
    // Each element alone (a padded tail block) and a slice starting at an odd offset.
    std::size_t differ = 0;
    for (std::size_t i = 0; i < 3000; i += 7) {
      float yi, di;
      gelu_forward(&yi, &x[i], 1, kind);
      gelu_backward(&di, &dy[i], &x[i], 1, kind);
      differ += yi != y2[i] || di != d2[i];
    }
    CHECK(differ == 0);
    std::vector<float> slice(1001);
    gelu_forward(slice.data(), x.data() + 3, 1001, kind);
    CHECK(std::equal(slice.begin(), slice.end(), y2.begin() + 3));
  }
}

TEST_CASE("bias_gelu_forward equals the bias add then gelu_forward, in place or not") {
  for (const gelu_kind kind : {gelu_kind::erf, gelu_kind::tanh}) {
    for (const int N : {3, 200}) {  // 200 · 384 > 65536: the OpenMP path
      for (const int I : {37, 3072 / 8}) {
        CAPTURE(int(kind));
        CAPTURE(N);
        CAPTURE(I);
        test::rng r(23);
        std::vector<float> inp(std::size_t(N) * I), b(static_cast<std::size_t>(I));
        for (auto& v : inp) v = float(r.uniform(-4, 4));
        for (auto& v : b) v = float(r.uniform(-1, 1));
        // Unfused: linear_forward's bias add (a float add per element), then the activation.
        std::vector<float> want_pre(inp.size()), want(inp.size());
        for (int n = 0; n < N; ++n)
          for (int i = 0; i < I; ++i) want_pre[std::size_t(n) * I + i] = inp[std::size_t(n) * I + i] + b[std::size_t(i)];
        gelu_forward(want.data(), want_pre.data(), std::ptrdiff_t(want.size()), kind);

        std::vector<float> pre(inp.size()), out(inp.size());
        bias_gelu_forward(out.data(), pre.data(), inp.data(), b.data(), N, I, kind);
        CHECK(pre == want_pre);
        CHECK(out == want);
        auto in_place = inp;  // pre aliasing inp, as the encoder keeps h4pre
        std::vector<float> out2(inp.size());
        bias_gelu_forward(out2.data(), in_place.data(), in_place.data(), b.data(), N, I, kind);
        CHECK(in_place == want_pre);
        CHECK(out2 == want);
        // No bias: pre is a copy of inp.
        bias_gelu_forward(out2.data(), pre.data(), inp.data(), static_cast<const float*>(nullptr), N, I, kind);
        CHECK(pre == inp);
        std::vector<float> plain(inp.size());
        gelu_forward(plain.data(), inp.data(), std::ptrdiff_t(inp.size()), kind);
        CHECK(out2 == plain);
      }
    }
  }
}

TEST_CASE("bias_gelu_forward: its cached pre gives the gradients through gelu_backward") {
  // dpre = gelu_backward(dout, pre); dinp = dpre; db = Σ_n dpre. Checked against finite
  // differences of sum(R ⊙ out) in inp and in b.
  for (const gelu_kind kind : {gelu_kind::erf, gelu_kind::tanh}) {
    CAPTURE(int(kind));
    const int N = 4, I = 21;
    test::rng r(29);
    auto inp = r.vector(std::size_t(N) * I, -3, 3), b = r.vector(std::size_t(I)), R = r.vector(inp.size());
    std::vector<double> pre(inp.size()), out(inp.size());
    auto loss = [&] {
      bias_gelu_forward(out.data(), pre.data(), inp.data(), b.data(), N, I, kind);
      return test::dot(R, out);
    };
    loss();
    std::vector<double> dpre(inp.size()), db(std::size_t(I), 0.0);
    gelu_backward(dpre.data(), R.data(), pre.data(), std::ptrdiff_t(pre.size()), kind);
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < I; ++i) db[std::size_t(i)] += dpre[std::size_t(n) * I + i];
    check_gradient("dinp", loss, inp.data(), dpre.data(), dpre.size());
    check_gradient("db", loss, b.data(), db.data(), db.size());
  }
}

TEST_CASE("hidden_act spellings") {
  CHECK(parse_gelu_kind("gelu", "c") == gelu_kind::erf);
  CHECK(parse_gelu_kind("gelu_new", "c") == gelu_kind::tanh);
  CHECK(parse_gelu_kind("gelu_pytorch_tanh", "c") == gelu_kind::tanh);
  CHECK_THROWS_WITH_AS(parse_gelu_kind("relu", "cfg.json"), doctest::Contains("cfg.json: hidden_act 'relu'"), error);
}
