// gelu_forward / gelu_backward: exact (erf) GELU values and a finite-difference check of dinp.
#include <bitfit/ops/gelu.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

TEST_CASE("gelu_forward is the exact erf form") {
  // x·Φ(x) at a few points (Φ from the normal CDF); the tanh approximation differs at ~1e-4.
  const std::vector<double> x = {-3.0, -1.0, 0.0, 0.5, 1.0, 2.0};
  const std::vector<double> want = {-0.00404969409489031, -0.15865525393145707, 0.0,
                                    0.34573123063700656, 0.8413447460685429, 1.9544997361036416};
  std::vector<double> y(x.size());
  gelu_forward(y.data(), x.data(), std::ptrdiff_t(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == doctest::Approx(want[i]).epsilon(1e-13));
}

TEST_CASE("gelu_backward matches finite differences and may alias dout") {
  test::rng r(31);
  auto x = r.vector(40, -4, 4), R = r.vector(40);
  std::vector<double> y(x.size()), dx(x.size());
  auto loss = [&] {
    gelu_forward(y.data(), x.data(), std::ptrdiff_t(x.size()));
    return test::dot(R, y);
  };
  gelu_backward(dx.data(), R.data(), x.data(), std::ptrdiff_t(x.size()));
  check_gradient("dinp", loss, x.data(), dx.data(), dx.size());

  auto d = R;  // in place: dinp == dout
  gelu_backward(d.data(), d.data(), x.data(), std::ptrdiff_t(x.size()));
  CHECK(d == dx);
  // The backward overwrites: stale values in dinp do not leak in.
  auto stale = r.vector(x.size());
  gelu_backward(stale.data(), R.data(), x.data(), std::ptrdiff_t(x.size()));
  CHECK(stale == dx);
}
