// dropout: the keep-mask is a pure function of (seed, index); its statistics; the backward is
// the same linear map as the forward; an inactive site is the identity; the vectorised loops
// (integer threshold, bitwise select) give dropout_keep's mask exactly, also at p equal to an
// element's own uniform, and in float.
#include <bitfit/ops/dropout.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
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

namespace {
/// The uniform dropout_keep compares with p for element i.
double uniform_of(const dropout_site& s, std::uint64_t i) {
  return double(detail::mix64(s.seed ^ (i * detail::dropout_index_mul)) >> 11) * 0x1.0p-53;
}
}  // namespace

TEST_CASE("dropout_forward keeps exactly dropout_keep's elements, at the boundary too") {
  // The vectorised loop tests (mix >> 11) >= ceil(p · 2^53) in integers; dropout_keep tests
  // (mix >> 11) · 2^-53 >= p in double. Element i with uniform u_i is kept at p = u_i (>=) and
  // dropped at the next double above u_i: the two tests must agree on both sides of the boundary.
  const std::uint64_t first = 12345;
  const std::ptrdiff_t n = 1000;  // several 256-element chunks and a partial one
  const std::vector<double> x(std::size_t(n), 3.0);
  std::vector<double> y(x.size());
  for (std::uint64_t seed : {1ull, 0xFFFFFFFFFFFFFFFFull}) {
    for (std::uint64_t i : {first, first + 300, first + n - 1}) {
      const double u = uniform_of(dropout_site{0.5, seed}, i);
      for (const double p : {u, std::nextafter(u, 1.0), std::nextafter(u, 0.0)}) {
        CAPTURE(seed);
        CAPTURE(i);
        CAPTURE(p);
        const dropout_site s{p, seed};
        dropout_forward(y.data(), x.data(), n, s, first);
        CHECK((y[std::size_t(i - first)] != 0.0) == (p <= u));
        CHECK(y == reference(x, s, first));
      }
    }
  }
  // Probabilities that are and are not multiples of 2^-53.
  for (const double p : {0.1, 0.5, 0x1.0p-53, 1.0 - 0x1.0p-53, 1.0 / 3.0}) {
    CAPTURE(p);
    const dropout_site s{p, 77};
    dropout_forward(y.data(), x.data(), n, s, first);
    CHECK(y == reference(x, s, first));
  }
}

TEST_CASE("float dropout: the same mask and scale as the element-wise definition") {
  const dropout_site s{0.1, 4321};
  test::rng r(4);
  std::vector<float> x(std::size_t(n_big) + 5), y(x.size());
  for (auto& v : x) v = float(r.uniform());
  // An odd offset into the buffers and an odd global index: no alignment to lean on.
  dropout_forward(y.data() + 1, x.data() + 1, n_big, s, 3);
  const float scale = float(1.0 / (1.0 - s.p));
  std::size_t wrong = 0;
  for (std::ptrdiff_t i = 0; i < n_big; ++i) {
    const float want = dropout_keep(s, std::uint64_t(3 + i)) ? x[std::size_t(i + 1)] * scale : 0.0f;
    wrong += y[std::size_t(i + 1)] != want;
  }
  CHECK(wrong == 0);
  CHECK(y[0] == 0.0f);  // untouched around the slice
  CHECK(y[std::size_t(n_big) + 1] == 0.0f);
}

TEST_CASE("dropout drops non-finite values like any other") {
  // The select is a bitwise and: a dropped inf or NaN becomes +0, a kept one stays.
  const dropout_site s{0.5, 8};
  std::vector<double> x(64), y(64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 2 ? std::numeric_limits<double>::infinity() : std::nan("");
  dropout_forward(y.data(), x.data(), 64, s);
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (dropout_keep(s, i)) {
      CHECK((i % 2 ? std::isinf(y[i]) : std::isnan(y[i])));
    } else {
      CHECK(y[i] == 0.0);
      CHECK_FALSE(std::signbit(y[i]));
      ++dropped;
    }
  }
  CHECK(dropped > 0);
}
