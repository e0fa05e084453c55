// linear_forward / linear_backward: finite-difference checks of every gradient, accumulation,
// and the bias-only instantiation that must not touch dW.
#include <bitfit/ops/linear.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

namespace {
constexpr int N = 5, I = 4, O = 9;

struct linear_case {
  test::rng r{11};
  std::vector<double> x = r.vector(N * I), W = r.vector(O * I), b = r.vector(O), R = r.vector(N * O);
  std::vector<double> y = std::vector<double>(N * O);
  double loss() {
    linear_forward(y.data(), x.data(), W.data(), b.data(), N, I, O);
    return test::dot(R, y);
  }
};
}  // namespace

TEST_CASE("linear_forward computes x W^T + b") {
  linear_case c;
  c.loss();
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      double want = c.b[o];
      for (int i = 0; i < I; ++i) want += c.x[n * I + i] * c.W[o * I + i];
      CHECK(c.y[n * O + o] == doctest::Approx(want).epsilon(1e-14));
    }
  std::vector<double> y0(N * O);
  linear_forward(y0.data(), c.x.data(), c.W.data(), static_cast<const double*>(nullptr), N, I, O);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) CHECK(y0[n * O + o] == doctest::Approx(c.y[n * O + o] - c.b[o]).epsilon(1e-14));
}

TEST_CASE("linear_backward<true> matches finite differences for dinp, dW and db") {
  linear_case c;
  std::vector<double> dx(N * I, 0.0), dW(O * I, 0.0), db(O, 0.0);
  linear_backward<true>(dx.data(), dW.data(), db.data(), c.R.data(), c.x.data(), c.W.data(), N, I, O);
  auto loss = [&] { return c.loss(); };
  check_gradient("dinp", loss, c.x.data(), dx.data(), dx.size());
  check_gradient("dW", loss, c.W.data(), dW.data(), dW.size());
  check_gradient("db", loss, c.b.data(), db.data(), db.size());
}

TEST_CASE("linear_backward accumulates into every gradient it is given") {
  linear_case c;
  std::vector<double> dx(N * I, 0.0), dW(O * I, 0.0), db(O, 0.0);
  linear_backward<true>(dx.data(), dW.data(), db.data(), c.R.data(), c.x.data(), c.W.data(), N, I, O);
  test::rng r(3);
  auto dx2 = r.vector(N * I), dW2 = r.vector(O * I), db2 = r.vector(O);
  const auto dx0 = dx2, dW0 = dW2, db0 = db2;
  linear_backward<true>(dx2.data(), dW2.data(), db2.data(), c.R.data(), c.x.data(), c.W.data(), N, I, O);
  for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx2[i] == doctest::Approx(dx0[i] + dx[i]).epsilon(1e-14));
  for (std::size_t i = 0; i < dW.size(); ++i) CHECK(dW2[i] == doctest::Approx(dW0[i] + dW[i]).epsilon(1e-14));
  for (std::size_t i = 0; i < db.size(); ++i) CHECK(db2[i] == doctest::Approx(db0[i] + db[i]).epsilon(1e-14));
}

TEST_CASE("linear_backward<false> computes dinp and db but leaves dW untouched") {
  linear_case c;
  std::vector<double> dx_t(N * I, 0.0), dW_t(O * I, 0.0), db_t(O, 0.0);
  linear_backward<true>(dx_t.data(), dW_t.data(), db_t.data(), c.R.data(), c.x.data(), c.W.data(), N, I, O);

  test::rng r(5);
  auto dW = r.vector(O * I);
  const auto dW_before = dW;
  std::vector<double> dx(N * I, 0.0), db(O, 0.0);
  linear_backward<false>(dx.data(), dW.data(), db.data(), c.R.data(), c.x.data(), c.W.data(), N, I, O);
  CHECK(dW == dW_before);
  // The same values as <true> up to rounding: Eigen's vectorised kernels peel a number of leading
  // elements that depends on the destination address (see the address test below).
  for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx[i] == doctest::Approx(dx_t[i]).epsilon(1e-14));
  for (std::size_t i = 0; i < db.size(); ++i) CHECK(db[i] == doctest::Approx(db_t[i]).epsilon(1e-14));
  // A bias-only caller passes no input at all: the <false> instantiation never reads it.
  std::vector<double> db2(O, 0.0);
  linear_backward<false>(static_cast<double*>(nullptr), dW.data(), db2.data(), c.R.data(),
                         static_cast<const double*>(nullptr), c.W.data(), N, I, O);
  for (std::size_t i = 0; i < db.size(); ++i) CHECK(db2[i] == doctest::Approx(db_t[i]).epsilon(1e-14));
  CHECK(dW == dW_before);
}

TEST_CASE("linear_weight_backward_subset: dW at the marked entries (finite differences), nothing elsewhere") {
  linear_case c;
  // A random scatter, one whole row and one whole column (rand_uniform's and rand_row_col's shapes).
  std::vector<unsigned char> keep(O * I, 0);
  test::rng r(7);
  for (auto& k : keep) k = r.vector(1)[0] > 0.6;
  for (int i = 0; i < I; ++i) keep[2 * I + i] = 1;
  for (int o = 0; o < O; ++o) keep[o * I + 3] = 1;
  auto dW = r.vector(O * I);  // accumulated into: the marked entries gain dW, the rest stay
  const auto before = dW;
  linear_weight_backward_subset(dW.data(), keep.data(), c.R.data(), c.x.data(), N, I, O);
  std::vector<double> dense(O * I, 0.0);
  linear_backward<true>(static_cast<double*>(nullptr), dense.data(), static_cast<double*>(nullptr), c.R.data(),
                        c.x.data(), c.W.data(), N, I, O);
  std::vector<double> marked(O * I, 0.0);
  for (std::size_t e = 0; e < keep.size(); ++e) {
    CAPTURE(e);
    if (keep[e]) CHECK(dW[e] == doctest::Approx(before[e] + dense[e]).epsilon(1e-13));
    else CHECK(dW[e] == before[e]);
    marked[e] = keep[e] ? dW[e] - before[e] : 0.0;
  }
  auto loss = [&] { return c.loss(); };
  // Finite differences at the marked entries.
  for (std::size_t e = 0; e < keep.size(); ++e)
    if (keep[e]) check_gradient("dW[marked]", loss, c.W.data() + e, marked.data() + e, 1);
}

TEST_CASE("linear_weight_backward_subset does not depend on where its inputs lie") {
  constexpr int n = 37, in = 6, out = 4;  // 37 tokens: vectorised dot products with a remainder
  test::rng r(13);
  const auto dout = r.vector(n * out), x = r.vector(n * in);
  std::vector<unsigned char> keep(out * in, 1);
  std::vector<double> a(out * in, 0.0), b(out * in, 0.0);
  linear_weight_backward_subset(a.data(), keep.data(), dout.data(), x.data(), n, in, out);
  std::vector<double> dout1(dout.size() + 1), x1(x.size() + 3);  // other alignments
  std::copy(dout.begin(), dout.end(), dout1.begin() + 1);
  std::copy(x.begin(), x.end(), x1.begin() + 3);
  linear_weight_backward_subset(b.data(), keep.data(), dout1.data() + 1, x1.data() + 3, n, in, out);
  CHECK(a == b);
}

TEST_CASE("linear_weight_backward_subset at a size that runs in parallel matches the dense dW") {
  constexpr int n = 300, in = 256, out = 260;  // N·I and N·O above the parallel thresholds
  test::rng r(17);
  const auto dout = r.vector(n * out), x = r.vector(n * in), W = r.vector(out * in);
  std::vector<unsigned char> keep(out * in, 0);
  for (std::size_t e = 0; e < keep.size(); e += 97) keep[e] = 1;
  for (int i = 0; i < in; ++i) keep[5 * in + i] = 1;  // a whole row
  std::vector<double> sub(out * in, 0.0), dense(out * in, 0.0);
  for (int pass = 0; pass < 2; ++pass)  // the second call reuses the scratch of the first
    linear_weight_backward_subset(sub.data(), keep.data(), dout.data(), x.data(), n, in, out);
  linear_backward<true>(static_cast<double*>(nullptr), dense.data(), static_cast<double*>(nullptr), dout.data(),
                        x.data(), W.data(), n, in, out);
  std::size_t wrong = 0;
  for (std::size_t e = 0; e < keep.size(); ++e)
    wrong += keep[e] ? std::abs(sub[e] - 2 * dense[e]) > 1e-10 : sub[e] != 0.0;
  CHECK(wrong == 0);
}

TEST_CASE("linear_backward skips null gradients") {
  linear_case c;
  std::vector<double> dW_t(O * I, 0.0);
  linear_backward<true>(static_cast<double*>(nullptr), dW_t.data(), static_cast<double*>(nullptr),
                        c.R.data(), c.x.data(), c.W.data(), N, I, O);
  std::vector<double> dx(N * I, 0.0), dW(O * I, 0.0), db(O, 0.0);
  linear_backward<true>(dx.data(), dW.data(), db.data(), c.R.data(), c.x.data(), c.W.data(), N, I, O);
  for (std::size_t i = 0; i < dW.size(); ++i) CHECK(dW_t[i] == doctest::Approx(dW[i]).epsilon(1e-14));
}

TEST_CASE("linear_backward's bias gradient does not depend on the buffer's address") {
  // Eigen's vectorised column sum would handle the elements before the first packet-aligned
  // address of db one by one and the rest in packets, so with AVX the rounding of db would depend
  // on db's address mod 32/64, i.e. on the heap; bias_backward sums in a fixed order instead.
  constexpr int Nt = 11, Ot = 16;
  test::rng r(13);
  const auto dy = r.vector(Nt * Ot);
  alignas(64) double buf[Ot + 8];
  std::fill(std::begin(buf), std::end(buf), 0.0);
  linear_backward<false>(static_cast<double*>(nullptr), static_cast<double*>(nullptr), buf, dy.data(),
                         static_cast<const double*>(nullptr), static_cast<const double*>(nullptr), Nt, Nt, Ot);
  const std::vector<double> aligned(buf, buf + Ot);
  for (int shift = 1; shift < 8; ++shift) {
    CAPTURE(shift);
    std::fill(std::begin(buf), std::end(buf), 0.0);
    linear_backward<false>(static_cast<double*>(nullptr), static_cast<double*>(nullptr), buf + shift,
                           dy.data(), static_cast<const double*>(nullptr),
                           static_cast<const double*>(nullptr), Nt, Nt, Ot);
    CHECK(std::vector<double>(buf + shift, buf + shift + Ot) == aligned);
  }
}
