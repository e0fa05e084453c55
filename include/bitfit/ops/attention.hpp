#pragma once
/// @file attention.hpp
/// Multi-head scaled dot-product self-attention over a packed batch: the B sequences are stored
/// back to back (no padding), sequence b occupying rows [offsets[b], offsets[b+1]). Attending only
/// within a sequence is exactly HF's padded attention with the pad keys masked out, without the
/// wasted work on pad rows.

#include <bitfit/core/view.hpp>
#include <bitfit/ops/dropout.hpp>

#include <cmath>
#include <cstddef>
#include <span>

namespace bitfit {

/// Floats of the attention-probability cache for these sequences: A · Σ_b T_b².
inline std::size_t attention_cache_size(std::span<const int> offsets, int A) {
  std::size_t n = 0;
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    const std::size_t t = std::size_t(offsets[b + 1] - offsets[b]);
    n += std::size_t(A) * t * t;
  }
  return n;
}

namespace detail {
/// Start of each sequence's block in the probability cache (b + 1 entries) in `po`.
inline void attention_prob_offsets(std::size_t* po, std::span<const int> offsets, int A) {
  po[0] = 0;
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    const std::size_t t = std::size_t(offsets[b + 1] - offsets[b]);
    po[b + 1] = po[b] + std::size_t(A) * t * t;
  }
}

/// Per-thread scratch of at least n elements that only ever grows, one per `slot`: the attention
/// loops need (T, T) temporaries per head, and allocating them per head per call cost a malloc
/// and a free each in the innermost parallel loop. Eigen storage is aligned like a fresh
/// row_matrix, so the products over it round exactly as they did over per-head temporaries.
/// Called from inside a parallel region, each OpenMP thread gets its own buffers; a pointer
/// taken outside one must be passed in, never re-fetched by the workers.
template <class T, int slot>
T* attention_scratch(std::size_t n) {
  thread_local Eigen::Matrix<T, Eigen::Dynamic, 1> buf;
  if (std::size_t(buf.size()) < n) buf.resize(Eigen::Index(n));
  return buf.data();
}
}  // namespace detail

/// ctx (N, H) = softmax(Q_h K_h^T / √d) V_h per sequence and head h, with q, k, v the three
/// (N, H) column blocks of `qkv` (N, 3H) and d = H / A.
/// Caches P (A · Σ T_b²), the softmax probabilities before dropout: the backward needs them for
/// the softmax Jacobian and, with the regenerated dropout mask, for dV. q, k, v stay in `qkv`.
template <class T>
void attention_forward(T* ctx, T* P, const T* qkv, std::span<const int> offsets, int H, int A,
                       const dropout_site& drop = {}) {
  const int B = int(offsets.size()) - 1, d = H / A;
  const T scale = T(1) / std::sqrt(T(d));
  // The calling thread's buffer, shared read-only by the workers below.
  std::size_t* po = detail::attention_scratch<std::size_t, 0>(offsets.size());
  detail::attention_prob_offsets(po, offsets, A);
#pragma omp parallel for schedule(dynamic, 1)
  for (int ba = 0; ba < B * A; ++ba) {
    const int b = ba / A, a = ba % A;
    const int s = offsets[b], t = offsets[b + 1] - offsets[b];
    if (t == 0) continue;
    const T* base = qkv + std::ptrdiff_t(s) * 3 * H + a * d;
    auto q = as_strided(base, t, d, 3 * H);
    auto k = as_strided(base + H, t, d, 3 * H);
    auto v = as_strided(base + 2 * H, t, d, 3 * H);
    const std::size_t off = po[b] + std::size_t(a) * t * t;
    auto p = as_matrix(P + off, t, t);
    p.noalias() = (q * k.transpose()) * scale;
    // Softmax of each row in an aligned per-thread row: Eigen peels unaligned leading elements
    // off its vectorised exp and sums (scalar exp, another summation order), so a row of P,
    // whose address depends on the sequences before it, would round differently in another
    // batch. Aligned, each sequence's probabilities are the same whatever it is batched with.
    auto r = as_vector(detail::attention_scratch<T, 2>(std::size_t(t)), t);
    for (int i = 0; i < t; ++i) {
      auto row = p.row(i);
      r = row.transpose();
      r.array() = (r.array() - r.maxCoeff()).exp();
      r /= r.sum();
      row = r.transpose();
    }
    auto out = as_strided(ctx + std::ptrdiff_t(s) * H + a * d, t, d, H);
    if (drop.active()) {
      auto pd = as_matrix(detail::attention_scratch<T, 0>(std::size_t(t) * t), t, t);
      dropout_forward(pd.data(), P + off, std::ptrdiff_t(t) * t, drop, off);
      out.noalias() = pd * v;
    } else {
      out.noalias() = p * v;
    }
  }
}

/// Backward of attention_forward. Writes (overwrites) dqkv (N, 3H) from dctx (N, H):
///   dV = P̃^T dctx, dP̃ = dctx V^T, dP = dropout'(dP̃), dS = P ⊙ (dP − rowsum(dP ⊙ P)) / √d,
///   dQ = dS K, dK = dS^T Q   (P̃ = dropout(P), regenerated from the site's seed).
template <class T>
void attention_backward(T* dqkv, const T* dctx, const T* qkv, const T* P,
                        std::span<const int> offsets, int H, int A, const dropout_site& drop = {}) {
  const int B = int(offsets.size()) - 1, d = H / A;
  const T scale = T(1) / std::sqrt(T(d));
  std::size_t* po = detail::attention_scratch<std::size_t, 0>(offsets.size());
  detail::attention_prob_offsets(po, offsets, A);
#pragma omp parallel for schedule(dynamic, 1)
  for (int ba = 0; ba < B * A; ++ba) {
    const int b = ba / A, a = ba % A;
    const int s = offsets[b], t = offsets[b + 1] - offsets[b];
    if (t == 0) continue;
    const T* base = qkv + std::ptrdiff_t(s) * 3 * H + a * d;
    auto q = as_strided(base, t, d, 3 * H);
    auto k = as_strided(base + H, t, d, 3 * H);
    auto v = as_strided(base + 2 * H, t, d, 3 * H);
    T* dbase = dqkv + std::ptrdiff_t(s) * 3 * H + a * d;
    auto dq = as_strided(dbase, t, d, 3 * H);
    auto dk = as_strided(dbase + H, t, d, 3 * H);
    auto dv = as_strided(dbase + 2 * H, t, d, 3 * H);
    auto dout = as_strided(dctx + std::ptrdiff_t(s) * H + a * d, t, d, H);
    const std::size_t off = po[b] + std::size_t(a) * t * t;
    auto p = as_matrix(P + off, t, t);
    auto dp = as_matrix(detail::attention_scratch<T, 1>(std::size_t(t) * t), t, t);
    dp.noalias() = dout * v.transpose();
    if (drop.active()) {
      auto pd = as_matrix(detail::attention_scratch<T, 0>(std::size_t(t) * t), t, t);
      dropout_forward(pd.data(), P + off, std::ptrdiff_t(t) * t, drop, off);
      dv.noalias() = pd.transpose() * dout;
      dropout_backward(dp.data(), dp.data(), std::ptrdiff_t(t) * t, drop, off);
    } else {
      dv.noalias() = p.transpose() * dout;
    }
    for (int i = 0; i < t; ++i) {
      const T dot = dp.row(i).dot(p.row(i));
      dp.row(i) = (p.row(i).array() * (dp.row(i).array() - dot)).matrix() * scale;
    }
    dq.noalias() = dp * k;
    dk.noalias() = dp.transpose() * q;
  }
}

}  // namespace bitfit
