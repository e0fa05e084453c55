// layernorm_forward / layernorm_backward: normalisation, finite-difference checks of dinp, dg and
// db (also on the OpenMP path, N > 64), accumulation, the frozen-gain instantiation, and float
// results independent of the thread count and of where the rows sit in memory.
#include <bitfit/ops/layernorm.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>
#include <omp.h>

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

namespace {
/// float LayerNorm forward and backward (all gradients) over N x H values starting `shift`
/// floats into their buffers, with OpenMP limited to `threads`.
struct float_ln_run {
  std::vector<float> y, xhat, rstd, dx, dg, db;
};
float_ln_run run_float_ln(int N, int H, int threads, std::size_t shift) {
  test::rng r(5);
  const std::size_t NH = std::size_t(N) * H;
  std::vector<float> x(NH + shift), g(std::size_t(H) + shift), b(std::size_t(H) + shift), dy(NH + shift);
  for (std::size_t i = 0; i < NH; ++i) x[shift + i] = float(r.uniform(-2, 2)) + (i % 7 == 0 ? 10.0f : 0.0f);
  for (int h = 0; h < H; ++h) g[shift + std::size_t(h)] = float(r.uniform(0.5, 1.5)), b[shift + std::size_t(h)] = float(r.uniform());
  for (std::size_t i = 0; i < NH; ++i) dy[shift + i] = float(r.uniform());
  std::vector<float> y(NH + shift), xhat(NH + shift), rstd(std::size_t(N) + shift), dx(NH + shift, 0.5f),
      dg(std::size_t(H) + shift, 0.25f), db(std::size_t(H) + shift, 0.125f);
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  layernorm_forward(y.data() + shift, xhat.data() + shift, rstd.data() + shift, x.data() + shift, g.data() + shift,
                    b.data() + shift, N, H, 1e-12);
  layernorm_backward<true>(dx.data() + shift, dg.data() + shift, db.data() + shift, dy.data() + shift,
                           xhat.data() + shift, rstd.data() + shift, g.data() + shift, N, H);
  omp_set_num_threads(before);
  auto unshift = [shift](const std::vector<float>& v) { return std::vector<float>(v.begin() + std::ptrdiff_t(shift), v.end()); };
  return {unshift(y), unshift(xhat), unshift(rstd), unshift(dx), unshift(dg), unshift(db)};
}
}  // namespace

TEST_CASE("float LayerNorm: the same bits for any thread count and any row alignment") {
  // N > 64 and N·H > 65536: the parallel paths of the rows and of the token reductions; H = 770
  // leaves a partial block; shifting every buffer by one float moves each row off its alignment.
  const int N = 100, H = 770;
  const auto two = run_float_ln(N, H, 2, 0), one = run_float_ln(N, H, 1, 0), shifted = run_float_ln(N, H, 2, 1);
  for (const auto* other : {&one, &shifted}) {
    CHECK(other->y == two.y);
    CHECK(other->xhat == two.xhat);
    CHECK(other->rstd == two.rstd);
    CHECK(other->dx == two.dx);
    CHECK(other->dg == two.dg);
    CHECK(other->db == two.db);
  }
}

TEST_CASE("float LayerNorm agrees with the double computation") {
  // Statistics in double: the float result is the double one rounded, up to a few ulp.
  const int N = 7, H = 770;
  const auto f = run_float_ln(N, H, 2, 0);
  test::rng r(5);
  const std::size_t Hs = H, Ns = N;
  std::vector<double> x(Ns * Hs), g(Hs), b(Hs);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(float(r.uniform(-2, 2)) + (i % 7 == 0 ? 10.0f : 0.0f));
  for (int h = 0; h < H; ++h) g[std::size_t(h)] = double(float(r.uniform(0.5, 1.5))), b[std::size_t(h)] = double(float(r.uniform()));
  std::vector<double> y(x.size()), xhat(x.size()), rstd(Ns);
  layernorm_forward(y.data(), xhat.data(), rstd.data(), x.data(), g.data(), b.data(), N, H, 1e-12);
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(f.y[i] == doctest::Approx(y[i]).epsilon(1e-5).scale(1.0));
  for (int n = 0; n < N; ++n) CHECK(f.rstd[std::size_t(n)] == doctest::Approx(rstd[std::size_t(n)]).epsilon(1e-6));
}
