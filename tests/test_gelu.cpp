// gelu_forward / gelu_backward: both forms (erf, tanh) against reference values, and a
// finite-difference check of dinp for each.
#include <bitfit/ops/gelu.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

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

TEST_CASE("hidden_act spellings") {
  CHECK(parse_gelu_kind("gelu", "c") == gelu_kind::erf);
  CHECK(parse_gelu_kind("gelu_new", "c") == gelu_kind::tanh);
  CHECK(parse_gelu_kind("gelu_pytorch_tanh", "c") == gelu_kind::tanh);
  CHECK_THROWS_WITH_AS(parse_gelu_kind("relu", "cfg.json"), doctest::Contains("cfg.json: hidden_act 'relu'"), error);
}
