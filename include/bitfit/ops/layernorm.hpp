#pragma once
/// @file layernorm.hpp
/// LayerNorm over the hidden dimension: out = g ⊙ (x − μ)/σ + b (BitFit eq. for h3 and out,
/// with gain g frozen and bias b = bLN trainable).

#include <cmath>
#include <cstddef>

namespace bitfit {

/// out (N, H) = g ⊙ x̂ + b with x̂ = (inp − mean) · rstd, rstd = 1/sqrt(var + eps).
/// Caches x̂ (N, H) and rstd (N): the backward of the input needs exactly these (the gain is a
/// parameter), so neither the input nor the output has to be kept for it.
template <class T>
void layernorm_forward(T* out, T* xhat, T* rstd, const T* inp, const T* g, const T* b, int N, int H,
                       double eps) {
#pragma omp parallel for schedule(static) if (N > 64)
  for (int n = 0; n < N; ++n) {
    // Statistics in double: BERT-base has hidden dimensions of |x| ~ 10 beside ones of ~0.1, and a
    // float sum over H = 768 of them loses digits that every later layer amplifies (O(H) work
    // per row, nothing beside the O(H^2) GEMMs).
    const T* x = inp + std::ptrdiff_t(n) * H;
    double sum = 0;
    for (int h = 0; h < H; ++h) sum += double(x[h]);
    const double mu = sum / H;
    double var = 0;
    for (int h = 0; h < H; ++h) var += (double(x[h]) - mu) * (double(x[h]) - mu);
    var /= H;  // biased variance, as torch.nn.LayerNorm
    const T mean = T(mu);
    const T r = T(1.0 / std::sqrt(var + eps));
    T* xh = xhat + std::ptrdiff_t(n) * H;
    T* y = out + std::ptrdiff_t(n) * H;
    for (int h = 0; h < H; ++h) {
      xh[h] = (x[h] - mean) * r;
      y[h] = g[h] * xh[h] + b[h];
    }
    rstd[n] = r;
  }
}

/// Backward of layernorm_forward, from the cached x̂ and rstd.
///   dinp (N, H) += rstd ⊙ (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)), dx̂ = dout ⊙ g  (dinp may be null)
///   db   (H)    += Σ_n dout                                                   (db may be null)
///   dg   (H)    += Σ_n dout ⊙ x̂  only in the `WeightGrad` instantiation (the gain is frozen in BitFit)
template <bool WeightGrad, class T>
void layernorm_backward(T* dinp, T* dg, T* db, const T* dout, const T* xhat, const T* rstd,
                        const T* g, int N, int H) {
  if (dinp) {
#pragma omp parallel for schedule(static) if (N > 64)
    for (int n = 0; n < N; ++n) {
      const T* dy = dout + std::ptrdiff_t(n) * H;
      const T* xh = xhat + std::ptrdiff_t(n) * H;
      T mean_d = 0, mean_dx = 0;
      for (int h = 0; h < H; ++h) {
        const T d = dy[h] * g[h];
        mean_d += d;
        mean_dx += d * xh[h];
      }
      mean_d /= T(H);
      mean_dx /= T(H);
      T* dx = dinp + std::ptrdiff_t(n) * H;
      for (int h = 0; h < H; ++h) dx[h] += rstd[n] * (dy[h] * g[h] - mean_d - xh[h] * mean_dx);
    }
  }
  // Parameter gradients reduce over tokens; a serial pass keeps the summation order fixed.
  for (int n = 0; n < N; ++n) {
    const T* dy = dout + std::ptrdiff_t(n) * H;
    if (db)
      for (int h = 0; h < H; ++h) db[h] += dy[h];
    if constexpr (WeightGrad) {
      const T* xh = xhat + std::ptrdiff_t(n) * H;
      if (dg)
        for (int h = 0; h < H; ++h) dg[h] += dy[h] * xh[h];
    }
  }
}

}  // namespace bitfit
