// residual_layernorm_forward / residual_layernorm_backward: bit for bit the unfused sequence the
// encoder ran (bias add, dropout_forward, residual add, layernorm_forward; layernorm_backward into
// a zeroed buffer, dropout_backward, the bias sum), with and without dropout and bias, on the
// serial and the OpenMP paths; finite-difference checks of every gradient; the same bits for
// any thread count.
#include <bitfit/ops/residual_layernorm.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

namespace {
template <class T>
std::vector<T> values(std::size_t n, std::uint64_t seed, double lo = -2, double hi = 2) {
  test::rng r(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = T(r.uniform(lo, hi));
  return v;
}

/// Inputs and outputs of one residual LayerNorm, N x H.
template <class T>
struct tail_case {
  int N, H;
  std::vector<T> h, b, res, g, bLN, dout;
  tail_case(int n, int hidden)
      : N(n), H(hidden), h(values<T>(std::size_t(n) * hidden, 1)), b(values<T>(std::size_t(hidden), 2)),
        res(values<T>(std::size_t(n) * hidden, 3)), g(values<T>(std::size_t(hidden), 4, 0.5, 1.5)),
        bLN(values<T>(std::size_t(hidden), 5)), dout(values<T>(std::size_t(n) * hidden, 6)) {}
  std::size_t NH() const { return std::size_t(N) * std::size_t(H); }
};

template <class T>
struct forward_result {
  std::vector<T> out, xhat, rstd;
};

/// The encoder's former four passes.
template <class T>
forward_result<T> unfused_forward(const tail_case<T>& c, bool with_bias, const dropout_site& drop) {
  std::vector<T> h = c.h;
  if (with_bias)
    for (int n = 0; n < c.N; ++n)
      for (int k = 0; k < c.H; ++k) h[std::size_t(n) * c.H + k] += c.b[std::size_t(k)];
  dropout_forward(h.data(), h.data(), std::ptrdiff_t(h.size()), drop);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] += c.res[i];
  forward_result<T> r{std::vector<T>(h.size()), std::vector<T>(h.size()), std::vector<T>(std::size_t(c.N))};
  layernorm_forward(r.out.data(), r.xhat.data(), r.rstd.data(), h.data(), c.g.data(), c.bLN.data(), c.N, c.H, 1e-12);
  return r;
}

template <class T>
forward_result<T> fused_forward(const tail_case<T>& c, bool with_bias, const dropout_site& drop) {
  forward_result<T> r{std::vector<T>(c.NH()), std::vector<T>(c.NH()), std::vector<T>(std::size_t(c.N))};
  residual_layernorm_forward(r.out.data(), r.xhat.data(), r.rstd.data(), c.h.data(), with_bias ? c.b.data() : nullptr,
                             c.res.data(), c.g.data(), c.bLN.data(), c.N, c.H, 1e-12, drop);
  return r;
}

template <class T>
struct backward_result {
  std::vector<T> dh, dres, dg, dbLN, db;
};

/// layernorm_backward into a zeroed dres, dropout_backward, then db summed token by token.
template <class T>
backward_result<T> unfused_backward(const tail_case<T>& c, const forward_result<T>& f, const dropout_site& drop) {
  const std::size_t H = std::size_t(c.H);
  backward_result<T> r{std::vector<T>(c.NH()), std::vector<T>(c.NH(), T(0)), std::vector<T>(H, T(0.5)),
                       std::vector<T>(H, T(0.25)), std::vector<T>(H, T(0.125))};
  layernorm_backward<true>(r.dres.data(), r.dg.data(), r.dbLN.data(), c.dout.data(), f.xhat.data(), f.rstd.data(),
                           c.g.data(), c.N, c.H);
  dropout_backward(r.dh.data(), r.dres.data(), std::ptrdiff_t(c.NH()), drop);
  for (int n = 0; n < c.N; ++n)
    for (std::size_t k = 0; k < H; ++k) r.db[k] += r.dh[std::size_t(n) * H + k];
  return r;
}

template <class T>
backward_result<T> fused_backward(const tail_case<T>& c, const forward_result<T>& f, const dropout_site& drop) {
  const std::size_t H = std::size_t(c.H);
  // Stale values in dh and dres: the fused backward overwrites both.
  backward_result<T> r{std::vector<T>(c.NH(), T(7)), std::vector<T>(c.NH(), T(-7)), std::vector<T>(H, T(0.5)),
                       std::vector<T>(H, T(0.25)), std::vector<T>(H, T(0.125))};
  residual_layernorm_backward<true>(r.dh.data(), r.dres.data(), r.dg.data(), r.dbLN.data(), r.db.data(), c.dout.data(),
                                    f.xhat.data(), f.rstd.data(), c.g.data(), c.N, c.H, drop);
  return r;
}

const dropout_site no_drop{}, drop_site{0.1, 0xD00Dull};
}  // namespace

TEST_CASE_TEMPLATE("residual_layernorm_forward is bit-identical to the unfused passes", T, float, double) {
  // (3, 100): serial, partial blocks and a partial dropout chunk; (80, 768): BERT-base rows on
  // the OpenMP path.
  for (const auto& [N, H] : {std::pair{3, 100}, std::pair{80, 768}}) {
    for (const bool with_bias : {true, false}) {
      for (const auto& drop : {no_drop, drop_site}) {
        CAPTURE(N);
        CAPTURE(H);
        CAPTURE(with_bias);
        CAPTURE(drop.p);
        const tail_case<T> c(N, H);
        const auto want = unfused_forward(c, with_bias, drop);
        const auto got = fused_forward(c, with_bias, drop);
        CHECK(got.out == want.out);
        CHECK(got.xhat == want.xhat);
        CHECK(got.rstd == want.rstd);
      }
    }
  }
  // The dropout is really in effect, and the bias too.
  const tail_case<T> c(3, 100);
  CHECK(fused_forward(c, true, drop_site).out != fused_forward(c, true, no_drop).out);
  CHECK(fused_forward(c, true, no_drop).out != fused_forward(c, false, no_drop).out);
}

TEST_CASE_TEMPLATE("residual_layernorm_backward is bit-identical to the unfused passes", T, float, double) {
  for (const auto& [N, H] : {std::pair{3, 100}, std::pair{80, 768}}) {
    for (const auto& drop : {no_drop, drop_site}) {
      CAPTURE(N);
      CAPTURE(H);
      CAPTURE(drop.p);
      const tail_case<T> c(N, H);
      const auto f = fused_forward(c, true, drop);
      const auto want = unfused_backward(c, f, drop);
      const auto got = fused_backward(c, f, drop);
      CHECK(got.dh == want.dh);
      CHECK(got.dres == want.dres);
      CHECK(got.dg == want.dg);
      CHECK(got.dbLN == want.dbLN);
      CHECK(got.db == want.db);

      // Without dres (nobody needs the residual gradient) dh is the same; null parameter
      // gradients are skipped, and <false> never touches dg.
      std::vector<T> dh(c.NH()), dg(std::size_t(H), T(0.5));
      residual_layernorm_backward<false>(dh.data(), static_cast<T*>(nullptr), dg.data(), static_cast<T*>(nullptr),
                                         static_cast<T*>(nullptr), c.dout.data(), f.xhat.data(), f.rstd.data(),
                                         c.g.data(), c.N, c.H, drop);
      CHECK(dh == want.dh);
      CHECK(std::all_of(dg.begin(), dg.end(), [](T v) { return v == T(0.5); }));

      // dh in dout's buffer (as the encoder's backward reuses one), with and without dres.
      for (const bool with_dres : {true, false}) {
        CAPTURE(with_dres);
        auto shared = c.dout;
        std::vector<T> dres(c.NH()), dg2(std::size_t(H), T(0.5)), dbLN(std::size_t(H), T(0.25)), db(std::size_t(H), T(0.125));
        residual_layernorm_backward<true>(shared.data(), with_dres ? dres.data() : nullptr, dg2.data(), dbLN.data(),
                                          db.data(), shared.data(), f.xhat.data(), f.rstd.data(), c.g.data(), c.N, c.H,
                                          drop);
        CHECK(shared == want.dh);
        if (with_dres) CHECK(dres == want.dres);
        CHECK(dg2 == want.dg);
        CHECK(dbLN == want.dbLN);
        CHECK(db == want.db);
      }
    }
  }
}

TEST_CASE("residual_layernorm: the same bits for any thread count") {
  const tail_case<float> c(100, 770);  // N > 64, N·H > 65536: every parallel path
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    const auto f = fused_forward(c, true, drop_site);
    const auto d = fused_backward(c, f, drop_site);
    omp_set_num_threads(before);
    return std::pair{f, d};
  };
  const auto [f1, d1] = run(1);
  const auto [f2, d2] = run(2);
  CHECK(f1.out == f2.out);
  CHECK(f1.xhat == f2.xhat);
  CHECK(f1.rstd == f2.rstd);
  CHECK(d1.dh == d2.dh);
  CHECK(d1.dres == d2.dres);
  CHECK(d1.dg == d2.dg);
  CHECK(d1.dbLN == d2.dbLN);
  CHECK(d1.db == d2.db);
}

TEST_CASE("residual_layernorm_backward matches finite differences") {
  // With a fixed seed the dropout is a fixed linear map, so the loss stays differentiable.
  for (const auto& drop : {no_drop, dropout_site{0.3, 0xFEEDull}}) {
    for (const int N : {5, 70}) {  // 70 > 64: the OpenMP path
      CAPTURE(drop.p);
      CAPTURE(N);
      tail_case<double> c(N, 20);
      std::vector<double> out(c.NH()), xhat(c.NH()), rstd(static_cast<std::size_t>(N));
      auto loss = [&] {
        residual_layernorm_forward(out.data(), xhat.data(), rstd.data(), c.h.data(), c.b.data(), c.res.data(),
                                   c.g.data(), c.bLN.data(), c.N, c.H, 1e-5, drop);
        return test::dot(c.dout, out);
      };
      loss();
      std::vector<double> dh(c.NH()), dres(c.NH()), dg(20, 0.0), dbLN(20, 0.0), db(20, 0.0);
      residual_layernorm_backward<true>(dh.data(), dres.data(), dg.data(), dbLN.data(), db.data(), c.dout.data(),
                                        xhat.data(), rstd.data(), c.g.data(), c.N, c.H, drop);
      // The loss sums N·H = 1400 products of O(1): its rounding error in the central difference,
      // ε·|f|/h, reaches 1e-8, the default absolute floor, hence a floor of 1e-7.
      const test::fd_options o{.atol = 1e-7, .max_entries = 150};
      check_gradient("dh", loss, c.h.data(), dh.data(), dh.size(), o);
      check_gradient("dres", loss, c.res.data(), dres.data(), dres.size(), o);
      check_gradient("db", loss, c.b.data(), db.data(), db.size(), o);
      check_gradient("dg", loss, c.g.data(), dg.data(), dg.size(), o);
      check_gradient("dbLN", loss, c.bLN.data(), dbLN.data(), dbLN.size(), o);
    }
  }
}
