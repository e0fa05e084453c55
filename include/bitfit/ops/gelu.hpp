#pragma once
/// @file gelu.hpp
/// GELU in its two published forms (Hendrycks & Gimpel 2016):
///   erf:  x·Φ(x) = 0.5·x·(1 + erf(x/√2))                    HF `hidden_act = "gelu"`
///   tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))         Google's original BERT graph,
///                                                             HF `gelu_new` / `gelu_pytorch_tanh`
/// Google trained BERT with the tanh form; HF runs the same weights with the erf form. The two
/// differ by < 5e-4 per activation, enough to move hidden states at 1e-3, so TF parity needs tanh.

#include <bitfit/core/error.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

namespace bitfit {

/// Which GELU an encoder applies in its MLP.
enum class gelu_kind { erf, tanh };

/// The HF `hidden_act` spellings we accept; throws naming `origin` for any other.
inline gelu_kind parse_gelu_kind(std::string_view hidden_act, const std::string& origin) {
  if (hidden_act == "gelu") return gelu_kind::erf;
  if (hidden_act == "gelu_new" || hidden_act == "gelu_pytorch_tanh") return gelu_kind::tanh;
  throw error(origin + ": hidden_act '" + std::string(hidden_act) +
              "' is not supported (use 'gelu' (erf), 'gelu_new' or 'gelu_pytorch_tanh' (tanh))");
}

namespace detail {
template <class T> inline constexpr T inv_sqrt2 = T(0.70710678118654752440);
template <class T> inline constexpr T inv_sqrt2pi = T(0.39894228040143267794);
template <class T> inline constexpr T sqrt_2_over_pi = T(0.79788456080286535588);
template <class T> inline constexpr T gelu_tanh_c = T(0.044715);
}  // namespace detail

/// out (n) = gelu(inp). Caches nothing; the backward needs `inp`, which the caller keeps.
template <class T>
void gelu_forward(T* out, const T* inp, std::ptrdiff_t n, gelu_kind kind = gelu_kind::erf) {
  using namespace detail;
  if (kind == gelu_kind::erf) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = T(0.5) * inp[i] * (T(1) + std::erf(inp[i] * inv_sqrt2<T>));
  } else {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const T x = inp[i];
      out[i] = T(0.5) * x * (T(1) + std::tanh(sqrt_2_over_pi<T> * (x + gelu_tanh_c<T> * x * x * x)));
    }
  }
}

/// dinp (n) = dout · gelu'(inp). Overwrites dinp (may alias dout).
///   erf:  gelu'(x) = Φ(x) + x·φ(x)
///   tanh: with u = √(2/π)(x + c·x³), t = tanh(u): gelu'(x) = ½(1 + t) + ½·x·(1 − t²)·√(2/π)(1 + 3c·x²)
template <class T>
void gelu_backward(T* dinp, const T* dout, const T* inp, std::ptrdiff_t n, gelu_kind kind = gelu_kind::erf) {
  using namespace detail;
  if (kind == gelu_kind::erf) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const T x = inp[i];
      const T cdf = T(0.5) * (T(1) + std::erf(x * inv_sqrt2<T>));
      const T pdf = inv_sqrt2pi<T> * std::exp(T(-0.5) * x * x);
      dinp[i] = dout[i] * (cdf + x * pdf);
    }
  } else {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const T x = inp[i];
      const T t = std::tanh(sqrt_2_over_pi<T> * (x + gelu_tanh_c<T> * x * x * x));
      const T du = sqrt_2_over_pi<T> * (T(1) + T(3) * gelu_tanh_c<T> * x * x);
      dinp[i] = dout[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }
  }
}

}  // namespace bitfit
