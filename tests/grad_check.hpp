#pragma once
// Finite-difference gradient checks shared by the op, layer and encoder tests (double precision).
// A gradient entry passes when |analytic − fd| <= rtol · max(|analytic|, |fd|) + atol, with fd the
// central difference (f(x+h) − f(x−h)) / 2h: its truncation error is O(h²) ≈ 1e-12 and its
// rounding error ≈ ε·|f|/h ≈ 1e-10 for the O(1) losses used here, hence the absolute floor.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace bitfit::test {

/// Uniform doubles in [lo, hi) from a seeded Mersenne Twister (bit pattern fixed by the standard,
/// unlike std::uniform_real_distribution, so every platform sees the same numbers).
class rng {
 public:
  explicit rng(std::uint64_t seed) : gen_(seed) {}
  double uniform(double lo = -1.0, double hi = 1.0) {
    return lo + (hi - lo) * (double(gen_() >> 11) * 0x1.0p-53);
  }
  std::size_t index(std::size_t n) { return std::size_t(gen_() % n); }
  void fill(std::span<double> x, double lo = -1.0, double hi = 1.0) {
    for (auto& v : x) v = uniform(lo, hi);
  }
  std::vector<double> vector(std::size_t n, double lo = -1.0, double hi = 1.0) {
    std::vector<double> v(n);
    fill(v, lo, hi);
    return v;
  }

 private:
  std::mt19937_64 gen_;
};

/// sum(r ⊙ y): the scalar loss whose gradient with respect to y is r.
inline double dot(std::span<const double> r, std::span<const double> y) {
  REQUIRE(r.size() == y.size());
  return std::inner_product(r.begin(), r.end(), y.begin(), 0.0);
}

struct fd_options {
  double h = 1e-6;
  double rtol = 1e-6;
  double atol = 1e-8;
  std::size_t max_entries = 0;  ///< 0: every entry; else a seeded sample of this many
  std::uint64_t seed = 7;
};

/// Checks analytic[i] against the central difference of `loss()` in x[i] for every index in
/// `indices` (x is restored after each probe). `what` names the tensor in failure messages.
template <class Loss>
void check_gradient_at(const std::string& what, Loss&& loss, double* x, const double* analytic,
                       std::span<const std::size_t> indices, const fd_options& o = {}) {
  std::size_t failures = 0;
  double worst = 0.0;
  std::ostringstream first;
  for (std::size_t i : indices) {
    const double x0 = x[i];
    x[i] = x0 + o.h;
    const double fp = loss();
    x[i] = x0 - o.h;
    const double fm = loss();
    x[i] = x0;
    const double fd = (fp - fm) / (2 * o.h);
    const double err = std::abs(analytic[i] - fd);
    const double tol = o.rtol * std::max(std::abs(analytic[i]), std::abs(fd)) + o.atol;
    worst = std::max(worst, err / tol);
    if (!(err <= tol)) {
      if (failures < 5)
        first << "\n  " << what << "[" << i << "]: analytic " << analytic[i] << ", fd " << fd;
      ++failures;
    }
  }
  INFO(what << ": " << failures << " of " << indices.size()
            << " entries off; worst error/tolerance " << worst << first.str());
  CHECK(failures == 0);
}

/// check_gradient_at over x[0, n), or a seeded sample of o.max_entries of them.
template <class Loss>
void check_gradient(const std::string& what, Loss&& loss, double* x, const double* analytic,
                    std::size_t n, const fd_options& o = {}) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  if (o.max_entries && o.max_entries < n) {
    std::mt19937_64 g(o.seed);
    std::shuffle(idx.begin(), idx.end(), g);
    idx.resize(o.max_entries);
  }
  check_gradient_at(what, loss, x, analytic, idx, o);
}

/// Whether every element is exactly zero.
inline bool all_zero(std::span<const double> x) {
  return std::all_of(x.begin(), x.end(), [](double v) { return v == 0.0; });
}

}  // namespace bitfit::test
