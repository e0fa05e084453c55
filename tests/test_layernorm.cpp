// layernorm_forward / layernorm_backward: normalisation, finite-difference checks of dinp, dg and
// db (also on the OpenMP path, N > 64), accumulation, and the frozen-gain instantiation.
#include <bitfit/ops/layernorm.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

namespace {
struct ln_case {
  int N, H;
  double eps;
  test::rng r{21};
  std::vector<double> x, g, b, R, y, xhat, rstd;
  ln_case(int n, int h, double e = 1e-12)
      : N(n), H(h), eps(e), x(r.vector(std::size_t(n) * h, -2, 2)), g(r.vector(h, 0.5, 1.5)),
        b(r.vector(h)), R(r.vector(std::size_t(n) * h)), y(x.size()), xhat(x.size()), rstd(n) {}
  double loss() {
    layernorm_forward(y.data(), xhat.data(), rstd.data(), x.data(), g.data(), b.data(), N, H, eps);
    return test::dot(R, y);
  }
  void backward(std::vector<double>& dx, std::vector<double>& dg, std::vector<double>& db) {
    loss();
    dx.assign(x.size(), 0.0), dg.assign(H, 0.0), db.assign(H, 0.0);
    layernorm_backward<true>(dx.data(), dg.data(), db.data(), R.data(), xhat.data(), rstd.data(), g.data(), N, H);
  }
};
}  // namespace

TEST_CASE("layernorm_forward normalises each row and caches x-hat and rstd") {
  ln_case c(4, 8, 1e-5);
  c.loss();
  for (int n = 0; n < c.N; ++n) {
    double mean = 0, var = 0;
    for (int h = 0; h < c.H; ++h) mean += c.x[n * c.H + h];
    mean /= c.H;
    for (int h = 0; h < c.H; ++h) var += (c.x[n * c.H + h] - mean) * (c.x[n * c.H + h] - mean);
    var /= c.H;
    const double rstd = 1.0 / std::sqrt(var + 1e-5);
    CHECK(c.rstd[n] == doctest::Approx(rstd).epsilon(1e-14));
    for (int h = 0; h < c.H; ++h) {
      const double xh = (c.x[n * c.H + h] - mean) * rstd;
      CHECK(c.xhat[n * c.H + h] == doctest::Approx(xh).epsilon(1e-13));
      CHECK(c.y[n * c.H + h] == doctest::Approx(c.g[h] * xh + c.b[h]).epsilon(1e-13));
    }
  }
}

TEST_CASE("layernorm_backward<true> matches finite differences") {
  for (double eps : {1e-12, 1e-5}) {
    CAPTURE(eps);
    ln_case c(5, 8, eps);
    std::vector<double> dx, dg, db;
    c.backward(dx, dg, db);
    auto loss = [&] { return c.loss(); };
    check_gradient("dinp", loss, c.x.data(), dx.data(), dx.size());
    check_gradient("dg", loss, c.g.data(), dg.data(), dg.size());
    check_gradient("db", loss, c.b.data(), db.data(), db.size());
  }
}

TEST_CASE("layernorm_backward matches finite differences on the parallel path (N > 64)") {
  ln_case c(80, 16);
  std::vector<double> dx, dg, db;
  c.backward(dx, dg, db);
  auto loss = [&] { return c.loss(); };
  check_gradient("dinp", loss, c.x.data(), dx.data(), dx.size(), {.max_entries = 200});
  check_gradient("dg", loss, c.g.data(), dg.data(), dg.size());
  check_gradient("db", loss, c.b.data(), db.data(), db.size());
}

TEST_CASE("layernorm_backward accumulates, and <false> leaves the gain gradient untouched") {
  ln_case c(5, 8);
  std::vector<double> dx, dg, db;
  c.backward(dx, dg, db);

  test::rng r(9);
  auto dx2 = r.vector(dx.size()), dg2 = r.vector(dg.size()), db2 = r.vector(db.size());
  const auto dx0 = dx2, dg0 = dg2, db0 = db2;
  layernorm_backward<false>(dx2.data(), dg2.data(), db2.data(), c.R.data(), c.xhat.data(), c.rstd.data(),
                            c.g.data(), c.N, c.H);
  CHECK(dg2 == dg0);
  for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx2[i] == doctest::Approx(dx0[i] + dx[i]).epsilon(1e-13));
  for (std::size_t i = 0; i < db.size(); ++i) CHECK(db2[i] == doctest::Approx(db0[i] + db[i]).epsilon(1e-13));

  layernorm_backward<true>(static_cast<double*>(nullptr), dg2.data(), static_cast<double*>(nullptr),
                           c.R.data(), c.xhat.data(), c.rstd.data(), c.g.data(), c.N, c.H);
  for (std::size_t i = 0; i < dg.size(); ++i) CHECK(dg2[i] == doctest::Approx(dg0[i] + dg[i]).epsilon(1e-13));
}
