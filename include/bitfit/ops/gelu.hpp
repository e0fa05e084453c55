#pragma once
/// @file gelu.hpp
/// Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), as HF's `hidden_act = "gelu"` (not the tanh form).

#include <cmath>
#include <cstddef>

namespace bitfit {

/// out (n) = gelu(inp). Caches nothing; the backward needs `inp`, which the caller keeps.
template <class T>
void gelu_forward(T* out, const T* inp, std::ptrdiff_t n) {
  const T inv_sqrt2 = T(0.70710678118654752440);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = T(0.5) * inp[i] * (T(1) + std::erf(inp[i] * inv_sqrt2));
}

/// dinp (n) = dout · gelu'(inp), gelu'(x) = Φ(x) + x·φ(x). Overwrites dinp (may alias dout).
template <class T>
void gelu_backward(T* dinp, const T* dout, const T* inp, std::ptrdiff_t n) {
  const T inv_sqrt2 = T(0.70710678118654752440);
  const T inv_sqrt2pi = T(0.39894228040143267794);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T cdf = T(0.5) * (T(1) + std::erf(x * inv_sqrt2));
    const T pdf = inv_sqrt2pi * std::exp(T(-0.5) * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

}  // namespace bitfit
