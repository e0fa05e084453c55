#pragma once
/// @file dropout.hpp
/// Inverted dropout whose keep-mask is a pure function of (seed, element index): a counter-based
/// hash instead of a stored mask. The backward regenerates the same mask, so dropout costs no
/// activation memory, and a run is bit-identical for a given seed whatever the thread count.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace bitfit {

/// One dropout site in one step: probability `p` (0 = identity) and a seed unique to the site.
struct dropout_site {
  double p = 0.0;
  std::uint64_t seed = 0;
  bool active() const { return p > 0.0; }
};

namespace detail {
/// SplitMix64 finaliser (Steele, Lea, Flood 2014): a strong 64-bit mix, used as a stateless RNG.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
/// Seed of sub-site `k` of `seed` (a layer, a tensor within a layer, a step).
constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t k) {
  return mix64(seed ^ mix64(k + 0x632BE59BD9B4E019ull));
}
/// Odd constant spreading element indices over the hash input.
inline constexpr std::uint64_t dropout_index_mul = 0xD1B54A32D192ED03ull;
}  // namespace detail

/// Whether element `i` survives at this site. The definition of the mask; the loops below
/// compute the same test in a form that vectorises (detail::dropout_masks).
inline bool dropout_keep(const dropout_site& s, std::uint64_t i) {
  const double u = double(detail::mix64(s.seed ^ (i * detail::dropout_index_mul)) >> 11) * 0x1.0p-53;
  return u >= s.p;
}

namespace detail {
/// Elements whose masks are computed at a time (a stack buffer of 1-2 KiB).
inline constexpr int dropout_chunk = 256;

/// dropout_keep's test in integers: with k = mix64(·) >> 11 < 2⁵³, k·2⁻⁵³ ≥ p ⟺ k ≥ ⌈p·2⁵³⌉
/// (scaling p by 2⁵³ is exact). AVX2 has no uint64 → double conversion, so the original
/// comparison keeps the loop scalar; this one vectorises.
inline std::int64_t dropout_threshold(double p) { return std::int64_t(std::ceil(p * 0x1.0p53)); }

/// An unsigned integer as wide as T: the keep-mask of one element, all ones or all zeros.
template <class T>
using mask_bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

/// keep[j] (j < len <= dropout_chunk) = all ones if element first + j survives site s, else 0.
/// The index product is carried as a running sum (idx·K = first·K + j·K): one 64-bit multiply
/// fewer per element, the same bits.
template <class U>
void dropout_masks(U* keep, int len, const dropout_site& s, std::int64_t threshold, std::uint64_t first) {
  std::uint64_t idx_mul = first * dropout_index_mul;
  for (int j = 0; j < len; ++j, idx_mul += dropout_index_mul)
    keep[j] = U(0) - U(std::int64_t(mix64(s.seed ^ idx_mul) >> 11) >= threshold);
}

/// v where keep is all ones, +0 where it is zero: dropout's select as a bitwise and, which the
/// compiler vectorises (a conditional multiply it may not, as the multiply could trap).
template <class T>
T apply_mask(T v, mask_bits<T> keep) {
  return std::bit_cast<T>(std::bit_cast<mask_bits<T>>(v) & keep);
}

/// dropout_forward on len elements (any length), serially: for callers already inside a
/// parallel loop. scale = 1/(1 − p), threshold = dropout_threshold(p).
template <class T>
void dropout_span(T* out, const T* inp, std::ptrdiff_t len, const dropout_site& s, T scale,
                  std::int64_t threshold, std::uint64_t first) {
  for (std::ptrdiff_t i0 = 0; i0 < len; i0 += dropout_chunk) {
    const int m = int(std::min<std::ptrdiff_t>(dropout_chunk, len - i0));
    mask_bits<T> keep[dropout_chunk];
    dropout_masks(keep, m, s, threshold, first + std::uint64_t(i0));
    for (int j = 0; j < m; ++j) out[i0 + j] = apply_mask(inp[i0 + j] * scale, keep[j]);
  }
}
}  // namespace detail

/// out (n) = inp ⊙ keep / (1 − p), element i being global index `first + i`. May alias.
/// Caches nothing (the mask is regenerated).
template <class T>
void dropout_forward(T* out, const T* inp, std::ptrdiff_t n, const dropout_site& s,
                     std::uint64_t first = 0) {
  if (!s.active()) {
    if (out != inp)
      for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = inp[i];
    return;
  }
  constexpr int C = detail::dropout_chunk;
  const T scale = T(1.0 / (1.0 - s.p));
  const std::int64_t threshold = detail::dropout_threshold(s.p);
  const std::ptrdiff_t chunks = (n + C - 1) / C;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::ptrdiff_t k = 0; k < chunks; ++k) {
    const std::ptrdiff_t i0 = k * C;
    detail::dropout_span(out + i0, inp + i0, std::min<std::ptrdiff_t>(C, n - i0), s, scale, threshold,
                         first + std::uint64_t(i0));
  }
}

/// dinp (n) = dout ⊙ keep / (1 − p): the same linear map as the forward. May alias.
template <class T>
void dropout_backward(T* dinp, const T* dout, std::ptrdiff_t n, const dropout_site& s,
                      std::uint64_t first = 0) {
  dropout_forward(dinp, dout, n, s, first);
}

}  // namespace bitfit
