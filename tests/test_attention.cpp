// attention_forward / attention_backward on a packed batch: a naive reference for the forward,
// and finite-difference checks of dqkv with several sequence lengths (one of length 1), several
// head counts, and with the attention dropout off and active (with a fixed seed the dropout is a
// fixed linear map, so the loss stays differentiable and FD applies); the per-thread scratch that
// replaced the per-head temporaries leaks nothing from one call into the next.
#include <bitfit/ops/attention.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

namespace {
constexpr int H = 8;
const std::vector<int> offsets = {0, 3, 4, 9};  // lengths 3, 1, 5
constexpr int N = 9;

struct attn_case {
  int A;
  dropout_site drop;
  test::rng r{51};
  std::vector<double> qkv = r.vector(N * 3 * H, -1.5, 1.5), R = r.vector(N * H);
  std::vector<double> ctx = std::vector<double>(N * H), P;
  attn_case(int a, dropout_site d) : A(a), drop(d), P(attention_cache_size(offsets, a)) {}
  double loss() {
    attention_forward(ctx.data(), P.data(), qkv.data(), offsets, H, A, drop);
    return test::dot(R, ctx);
  }
};

/// softmax(q k^T / √d) v per sequence and head, in plain loops.
std::vector<double> naive_attention(const std::vector<double>& qkv, int A) {
  const int d = H / A;
  std::vector<double> out(N * H, 0.0);
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b)
    for (int a = 0; a < A; ++a)
      for (int i = offsets[b]; i < offsets[b + 1]; ++i) {
        std::vector<double> w;
        double mx = -1e300, sum = 0;
        for (int j = offsets[b]; j < offsets[b + 1]; ++j) {
          double s = 0;
          for (int e = 0; e < d; ++e) s += qkv[i * 3 * H + a * d + e] * qkv[j * 3 * H + H + a * d + e];
          w.push_back(s / std::sqrt(double(d)));
          mx = std::max(mx, w.back());
        }
        for (auto& v : w) sum += (v = std::exp(v - mx));
        for (int j = offsets[b]; j < offsets[b + 1]; ++j)
          for (int e = 0; e < d; ++e)
            out[i * H + a * d + e] += w[std::size_t(j - offsets[b])] / sum * qkv[j * 3 * H + 2 * H + a * d + e];
      }
  return out;
}
}  // namespace

TEST_CASE("attention_cache_size is A · Σ T_b²") {
  CHECK(attention_cache_size(offsets, 2) == 2 * (9 + 1 + 25));
  CHECK(attention_cache_size(std::vector<int>{0}, 4) == 0);
}

TEST_CASE("attention_forward matches a naive reference and attends only within a sequence") {
  for (int A : {1, 2, 4}) {
    CAPTURE(A);
    attn_case c(A, {});
    c.loss();
    const auto want = naive_attention(c.qkv, A);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(c.ctx[i] == doctest::Approx(want[i]).epsilon(1e-13));
    // A length-1 sequence attends to itself only: its context is its own value row.
    for (int h = 0; h < H; ++h) CHECK(c.ctx[3 * H + h] == doctest::Approx(c.qkv[3 * 3 * H + 2 * H + h]).epsilon(1e-14));
    // Each cached probability row sums to one.
    std::size_t off = 0;
    for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
      const int t = offsets[b + 1] - offsets[b];
      for (int row = 0; row < A * t; ++row, off += std::size_t(t)) {
        double s = 0;
        for (int j = 0; j < t; ++j) s += c.P[off + std::size_t(j)];
        CHECK(s == doctest::Approx(1.0).epsilon(1e-14));
      }
    }
    CHECK(off == c.P.size());
  }
}

TEST_CASE("attention_backward matches finite differences") {
  for (int A : {1, 2, 4}) {
    for (double p : {0.0, 0.3}) {
      CAPTURE(A);
      CAPTURE(p);
      attn_case c(A, {p, 0xABCDEFull + std::uint64_t(A)});
      c.loss();
      if (p > 0) {
        // The dropout is really in effect: the context differs from the dropout-free one.
        attn_case plain(A, {});
        plain.loss();
        CHECK(c.ctx != plain.ctx);
      }
      test::rng r(52);
      auto dqkv = r.vector(c.qkv.size());  // stale values: the backward overwrites
      attention_backward(dqkv.data(), c.R.data(), c.qkv.data(), c.P.data(), offsets, H, A, c.drop);
      check_gradient("dqkv", [&] { return c.loss(); }, c.qkv.data(), dqkv.data(), dqkv.size());
    }
  }
}

TEST_CASE("attention: reusing the per-thread scratch across calls and shapes changes nothing") {
  // The (T, T) temporaries live in per-thread buffers that only grow. A call on long sequences
  // leaves stale values behind; a later call on short ones must give the bits of a first call.
  // The caller's buffers stay put: Eigen's row sums round according to where a row starts, so
  // only calls over the same addresses can be compared bit for bit.
  const dropout_site drop{0.2, 99};
  const int A = 2, n_max = 140;
  std::vector<double> qkv(std::size_t(n_max) * 3 * H), dctx(std::size_t(n_max) * H), ctx(dctx.size()),
      P(std::size_t(A) * 60 * 60 * 4), dqkv(qkv.size());
  auto run = [&](const std::vector<int>& offs, std::uint64_t seed) {
    const std::size_t n = std::size_t(offs.back());
    test::rng r(seed);
    r.fill(std::span(qkv).first(n * 3 * H));
    r.fill(std::span(dctx).first(n * H));
    REQUIRE(attention_cache_size(offs, A) <= P.size());
    attention_forward(ctx.data(), P.data(), qkv.data(), offs, H, A, drop);
    attention_backward(dqkv.data(), dctx.data(), qkv.data(), P.data(), offs, H, A, drop);
    std::vector<double> result(ctx.begin(), ctx.begin() + std::ptrdiff_t(n * H));
    result.insert(result.end(), dqkv.begin(), dqkv.begin() + std::ptrdiff_t(n * 3 * H));
    return result;
  };
  const std::vector<int> small = {0, 3, 4, 9}, large = {0, 40, 41, 101, 140};
  const auto first = run(small, 1);
  const auto big = run(large, 2);  // grows every buffer and fills it with other values
  CHECK(run(small, 1) == first);
  CHECK(run(large, 2) == big);
}

TEST_CASE("attention_forward: a sequence's output does not depend on the sequences before it") {
  // Its probabilities sit at an offset in P that the earlier sequences set, so at another
  // alignment: the softmax must round the same there (a served batch mixes requests).
  constexpr int Hf = 64, Af = 4, t = 37;
  test::rng r{7};
  std::vector<float> seq(std::size_t(t) * 3 * Hf);
  for (auto& v : seq) v = float(r.uniform(-2.0, 2.0));
  auto run = [&](int before) {
    std::vector<float> qkv(std::size_t(before + t) * 3 * Hf);
    for (std::size_t i = 0; i < std::size_t(before) * 3 * Hf; ++i) qkv[i] = float(r.uniform(-2.0, 2.0));
    std::copy(seq.begin(), seq.end(), qkv.begin() + std::ptrdiff_t(before) * 3 * Hf);
    const std::vector<int> offs = before ? std::vector<int>{0, before, before + t} : std::vector<int>{0, t};
    std::vector<float> ctx(std::size_t(before + t) * Hf), P(attention_cache_size(offs, Af));
    attention_forward(ctx.data(), P.data(), qkv.data(), offs, Hf, Af);
    return std::vector<float>(ctx.begin() + std::ptrdiff_t(before) * Hf, ctx.end());
  };
  const auto alone = run(0);
  for (int before : {1, 2, 3, 5, 6, 7}) {
    CAPTURE(before);
    const auto got = run(before);
    CHECK(std::equal(got.begin(), got.end(), alone.begin()));
  }
}
