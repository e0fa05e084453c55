#pragma once
/// @file dropout.hpp
/// Inverted dropout whose keep-mask is a pure function of (seed, element index): a counter-based
/// hash instead of a stored mask. The backward regenerates the same mask, so dropout costs no
/// activation memory, and a run is bit-identical for a given seed whatever the thread count.

#include <cstddef>
#include <cstdint>

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
}  // namespace detail

/// Whether element `i` survives at this site.
inline bool dropout_keep(const dropout_site& s, std::uint64_t i) {
  const double u = double(detail::mix64(s.seed ^ (i * 0xD1B54A32D192ED03ull)) >> 11) * 0x1.0p-53;
  return u >= s.p;
}

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
  const T scale = T(1.0 / (1.0 - s.p));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = dropout_keep(s, first + i) ? inp[i] * scale : T(0);
}

/// dinp (n) = dout ⊙ keep / (1 − p): the same linear map as the forward. May alias.
template <class T>
void dropout_backward(T* dinp, const T* dout, std::ptrdiff_t n, const dropout_site& s,
                      std::uint64_t first = 0) {
  dropout_forward(dinp, dout, n, s, first);
}

}  // namespace bitfit
