// dropout: the keep-mask is a pure function of (seed, index); its statistics; the backward is
// the same linear map as the forward; an inactive site is the identity.
#include <bitfit/ops/dropout.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace bitfit;

namespace {
constexpr std::ptrdiff_t n_big = 100000;  // > 65536: the OpenMP path

std::vector<double> ones(std::ptrdiff_t n) { return std::vector<double>(std::size_t(n), 1.0); }

/// The forward of `in`, element by element from dropout_keep (the serial reference).
std::vector<double> reference(const std::vector<double>& in, const dropout_site& s, std::uint64_t first = 0) {
  std::vector<double> out(in.size());
  for (std::size_t i = 0; i < in.size(); ++i)
    out[i] = dropout_keep(s, first + i) ? in[i] * (1.0 / (1.0 - s.p)) : 0.0;
  return out;
}
}  // namespace

TEST_CASE("dropout: the same seed gives the same mask, a different seed a different one") {
  const dropout_site s{0.1, 1234}, s_same{0.1, 1234}, s_other{0.1, 1235};
  const auto x = ones(n_big);
  std::vector<double> a(x.size()), b(x.size()), c(x.size());
  dropout_forward(a.data(), x.data(), n_big, s);
  dropout_forward(b.data(), x.data(), n_big, s_same);
  dropout_forward(c.data(), x.data(), n_big, s_other);
  CHECK(a == b);
  CHECK(a != c);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += (a[i] == 0.0) != (c[i] == 0.0);
  // Two independent masks disagree on 2·p·(1−p) = 18% of the elements.
  CHECK(double(differ) / double(n_big) == doctest::Approx(0.18).epsilon(0.05));
  // The parallel forward equals the element-wise definition (thread count cannot matter).
  CHECK(a == reference(x, s));
}

TEST_CASE("dropout keeps 1 − p of the elements and scales them by 1/(1 − p)") {
  const auto x = ones(n_big);
  for (double p : {0.1, 0.5, 0.9}) {
    CAPTURE(p);
    const dropout_site s{p, 99};
    std::vector<double> y(x.size());
    dropout_forward(y.data(), x.data(), n_big, s);
    std::size_t kept = 0;
    bool values_ok = true;
    for (double v : y) {
      if (v != 0.0) {
        ++kept;
        values_ok = values_ok && v == 1.0 / (1.0 - p);
      }
    }
    CHECK(values_ok);
    // Binomial standard deviation sqrt(p(1−p)/n) <= 0.0016; allow 5 of them.
    const double rate = double(kept) / double(n_big);
    CHECK(std::abs(rate - (1.0 - p)) < 5 * std::sqrt(p * (1 - p) / double(n_big)));
  }
}

TEST_CASE("dropout: element i of a slice is global element first + i") {
  const dropout_site s{0.3, 7};
  test::rng r(1);
  auto x = r.vector(1000);
  std::vector<double> whole(x.size()), part(400);
  dropout_forward(whole.data(), x.data(), std::ptrdiff_t(x.size()), s);
  dropout_forward(part.data(), x.data() + 300, 400, s, 300);
  CHECK(std::equal(part.begin(), part.end(), whole.begin() + 300));
}

TEST_CASE("dropout_backward is the forward's linear map (its own transpose)") {
  const dropout_site s{0.25, 42};
  test::rng r(2);
  auto x = r.vector(n_big), R = r.vector(n_big);
  std::vector<double> y(x.size()), fwd(x.size()), dx(x.size());
  dropout_forward(fwd.data(), R.data(), n_big, s, 17);
  dropout_backward(dx.data(), R.data(), n_big, s, 17);
  CHECK(dx == fwd);
  // In place, as the encoder calls it.
  auto d = R;
  dropout_backward(d.data(), d.data(), n_big, s, 17);
  CHECK(d == dx);
  // And it is the gradient of sum(R ⊙ dropout(x)) (a fixed linear map: FD is exact up to rounding).
  auto loss = [&] {
    dropout_forward(y.data(), x.data(), n_big, s, 17);
    return test::dot(R, y);
  };
  test::check_gradient("dinp", loss, x.data(), dx.data(), x.size(), {.max_entries = 300});
}

TEST_CASE("an inactive dropout site is the identity") {
  const dropout_site off{};  // p = 0
  CHECK_FALSE(off.active());
  CHECK(dropout_site{0.1, 0}.active());
  test::rng r(3);
  auto x = r.vector(n_big);
  std::vector<double> y(x.size(), -5.0);
  dropout_forward(y.data(), x.data(), n_big, off);
  CHECK(y == x);
  auto z = x;
  dropout_forward(z.data(), z.data(), n_big, off);
  CHECK(z == x);
  std::vector<double> dx(x.size(), -5.0);
  dropout_backward(dx.data(), x.data(), n_big, off);
  CHECK(dx == x);
}
