#pragma once
/// @file gelu.hpp
/// GELU in its two published forms (Hendrycks & Gimpel 2016):
///   erf:  x·Φ(x) = 0.5·x·(1 + erf(x/√2))                    HF `hidden_act = "gelu"`
///   tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))         Google's original BERT graph,
///                                                             HF `gelu_new` / `gelu_pytorch_tanh`
/// Google trained BERT with the tanh form; HF runs the same weights with the erf form. The two
/// differ by < 5e-4 per activation, enough to move hidden states at 1e-3, so TF parity needs tanh.

#include <bitfit/core/error.hpp>
#include <bitfit/ops/detail/block.hpp>

#include <unsupported/Eigen/SpecialFunctions>  // Array::erf

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

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

/// gelu(x) on one block. Eigen evaluates erf, tanh and exp in packets for float (a rational
/// approximation within a few ulp of std::erf / std::tanh) and calls std::erf, std::tanh for
/// double, which has no packet versions of them.
template <gelu_kind K, class T>
block_array<T> gelu_block(const block_array<T>& x) {
  if constexpr (K == gelu_kind::erf) {
    return T(0.5) * x * (T(1) + (x * inv_sqrt2<T>).erf());
  } else {
    return T(0.5) * x * (T(1) + (sqrt_2_over_pi<T> * (x + gelu_tanh_c<T> * x * x * x)).tanh());
  }
}

/// gelu'(x) on one block (formulas on gelu_backward).
template <gelu_kind K, class T>
block_array<T> gelu_grad_block(const block_array<T>& x) {
  if constexpr (K == gelu_kind::erf) {
    const block_array<T> cdf = T(0.5) * (T(1) + (x * inv_sqrt2<T>).erf());
    const block_array<T> pdf = inv_sqrt2pi<T> * (T(-0.5) * x * x).exp();
    return cdf + x * pdf;
  } else {
    const block_array<T> t = (sqrt_2_over_pi<T> * (x + gelu_tanh_c<T> * x * x * x)).tanh();
    const block_array<T> du = sqrt_2_over_pi<T> * (T(1) + T(3) * gelu_tanh_c<T> * x * x);
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
  }
}

/// Calls f with the kind as a std::integral_constant (K() in f is then a constant expression):
/// the kind is chosen once per call, not per element.
template <class F>
void with_gelu_kind(gelu_kind kind, F&& f) {
  if (kind == gelu_kind::erf) {
    f(std::integral_constant<gelu_kind, gelu_kind::erf>{});
  } else {
    f(std::integral_constant<gelu_kind, gelu_kind::tanh>{});
  }
}

/// Element-wise loops split over threads only above this many elements (below it the fork
/// costs more than the work).
inline constexpr std::ptrdiff_t gelu_parallel_min = 65536;
}  // namespace detail

/// out (n) = gelu(inp). Caches nothing; the backward needs `inp`, which the caller keeps.
/// out[i] depends on inp[i] alone (see detail/block.hpp), so the result is the same for any
/// thread count and whatever the alignment. May alias.
template <class T>
void gelu_forward(T* out, const T* inp, std::ptrdiff_t n, gelu_kind kind = gelu_kind::erf) {
  using namespace detail;
  const std::ptrdiff_t blocks = (n + block - 1) / block;
  with_gelu_kind(kind, [&](auto K) {
#pragma omp parallel for schedule(static) if (n > gelu_parallel_min)
    for (std::ptrdiff_t k = 0; k < blocks; ++k) {
      const std::ptrdiff_t i = k * block, len = std::min<std::ptrdiff_t>(block, n - i);
      store_block(out + i, gelu_block<K()>(load_block(inp + i, len)), len);
    }
  });
}

/// out (N, I) = gelu(pre), pre (N, I) = inp + b (b broadcast over the N rows; may be null):
/// the bias add of the preceding linear layer fused with the activation, one pass over memory
/// instead of two. Caches pre, the GELU input: gelu_backward needs it for gelu'(pre).
/// pre may alias inp (the bias is then added in place); out must not alias either.
/// Bit-identical to linear_forward's bias add followed by gelu_forward.
template <class T>
void bias_gelu_forward(T* out, T* pre, const T* inp, const T* b, int N, int I,
                       gelu_kind kind = gelu_kind::erf) {
  using namespace detail;
  with_gelu_kind(kind, [&](auto K) {
#pragma omp parallel for schedule(static) if (std::ptrdiff_t(N) * I > gelu_parallel_min)
    for (int n = 0; n < N; ++n) {
      const std::ptrdiff_t row = std::ptrdiff_t(n) * I;
      for (int i = 0; i < I; i += block) {
        const int len = std::min(block, I - i);
        block_array<T> x = load_block(inp + row + i, len);
        if (b) x += load_block(b + i, len);
        store_block(pre + row + i, x, len);
        store_block(out + row + i, gelu_block<K()>(x), len);
      }
    }
  });
}

/// dinp (n) = dout · gelu'(inp). Overwrites dinp (may alias dout).
///   erf:  gelu'(x) = Φ(x) + x·φ(x)
///   tanh: with u = √(2/π)(x + c·x³), t = tanh(u): gelu'(x) = ½(1 + t) + ½·x·(1 − t²)·√(2/π)(1 + 3c·x²)
template <class T>
void gelu_backward(T* dinp, const T* dout, const T* inp, std::ptrdiff_t n, gelu_kind kind = gelu_kind::erf) {
  using namespace detail;
  const std::ptrdiff_t blocks = (n + block - 1) / block;
  with_gelu_kind(kind, [&](auto K) {
#pragma omp parallel for schedule(static) if (n > gelu_parallel_min)
    for (std::ptrdiff_t k = 0; k < blocks; ++k) {
      const std::ptrdiff_t i = k * block, len = std::min<std::ptrdiff_t>(block, n - i);
      store_block(dinp + i, load_block(dout + i, len) * gelu_grad_block<K()>(load_block(inp + i, len)), len);
    }
  });
}

}  // namespace bitfit
