#pragma once
/// @file layernorm.hpp
/// LayerNorm over the hidden dimension: out = g ⊙ (x − μ)/σ + b (BitFit eq. for h3 and out,
/// with gain g frozen and bias b = bLN trainable).

#include <bitfit/ops/detail/block.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace bitfit {

namespace detail {
/// Σ_h f(h) in double over h < H. Element h adds into lane h % block, and the lanes are added in
/// lane order at the end: independent lanes let the compiler vectorise the loop without
/// reassociating anything, and the summation order is fixed by H alone.
template <class F>
double lane_sum_double(int H, F&& f) {
  double acc[block] = {};
  int h = 0;
  for (; h + block <= H; h += block)
    for (int j = 0; j < block; ++j) acc[j] += f(h + j);
  for (int j = 0; h + j < H; ++j) acc[j] += f(h + j);
  double s = 0;
  for (int j = 0; j < block; ++j) s += acc[j];
  return s;
}

/// One row of layernorm_forward: y (H) = g ⊙ x̂ + b, x̂ (H) = (x − mean) · rstd. x may alias x̂
/// (the fused residual_layernorm_forward stages its input there); y must not alias either.
template <class T>
void layernorm_row(T* y, T* xh, T& rstd, const T* x, const T* g, const T* b, int H, double eps) {
  // Statistics in double: BERT-base has hidden dimensions of |x| ~ 10 beside ones of ~0.1, and a
  // float sum over H = 768 of them loses digits that every later layer amplifies (O(H) work
  // per row, nothing beside the O(H^2) GEMMs).
  const double mu = lane_sum_double(H, [x](int h) { return double(x[h]); }) / H;
  const double var = lane_sum_double(H, [x, mu](int h) {
                       const double d = double(x[h]) - mu;
                       return d * d;
                     }) / H;  // biased variance, as torch.nn.LayerNorm
  const T mean = T(mu);
  const T r = T(1.0 / std::sqrt(var + eps));
  for (int h = 0; h < H; h += block) {
    const int len = std::min(block, H - h);
    const block_array<T> v = (load_block(x + h, len) - mean) * r;
    store_block(xh + h, v, len);
    store_block(y + h, load_block(g + h, len) * v + load_block(b + h, len), len);
  }
  rstd = r;
}

/// One row of the input gradient of LayerNorm: dx (H) (+)= rstd ⊙ (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)),
/// dx̂ = dy ⊙ g. Accumulates when `accumulate`, else overwrites. The two means are summed in T
/// with the per-lane partial sums of detail/block.hpp (a fixed order, vectorised).
template <class T>
void layernorm_backward_row(T* dx, const T* dy, const T* xh, T rstd, const T* g, int H, bool accumulate) {
  block_array<T> sum_d = block_array<T>::Zero(), sum_dx = block_array<T>::Zero();
  for (int h = 0; h < H; h += block) {
    const int len = std::min(block, H - h);
    const block_array<T> d = load_block(dy + h, len) * load_block(g + h, len);
    sum_d += d;
    sum_dx += d * load_block(xh + h, len);
  }
  const T mean_d = lane_total(sum_d) / T(H), mean_dx = lane_total(sum_dx) / T(H);
  for (int h = 0; h < H; h += block) {
    const int len = std::min(block, H - h);
    block_array<T> v =
        rstd * (load_block(dy + h, len) * load_block(g + h, len) - mean_d - load_block(xh + h, len) * mean_dx);
    if (accumulate) v += load_block(dx + h, len);
    store_block(dx + h, v, len);
  }
}

/// Σ over the N tokens into H-vectors: calls f(n, h0, h1) for every token n in order, for column
/// strips [h0, h1) of the hidden dimension. Threads split the strips, never the tokens, so every
/// element is summed in token order and the result does not depend on the thread count.
template <class F>
void for_token_strips(int N, int H, F&& f) {
  constexpr int strip = 64;
  const int strips = (H + strip - 1) / strip;
#pragma omp parallel for schedule(static) if (std::ptrdiff_t(N) * H > 65536)
  for (int k = 0; k < strips; ++k) {
    const int h0 = k * strip, h1 = std::min(H, h0 + strip);
    for (int n = 0; n < N; ++n) f(n, h0, h1);
  }
}

/// db (H) += Σ_n dout and, in the `WeightGrad` instantiation, dg (H) += Σ_n dout ⊙ x̂ (either
/// may be null), in token order.
template <bool WeightGrad, class T>
void layernorm_param_grads(T* dg, T* db, const T* dout, const T* xhat, int N, int H) {
  if (!db && !(WeightGrad && dg)) return;
  for_token_strips(N, H, [&](int n, int h0, int h1) {
    const T* dy = dout + std::ptrdiff_t(n) * H;
    if (db)
      for (int h = h0; h < h1; ++h) db[h] += dy[h];
    if constexpr (WeightGrad) {
      const T* xh = xhat + std::ptrdiff_t(n) * H;
      if (dg)
        for (int h = h0; h < h1; ++h) dg[h] += dy[h] * xh[h];
    }
  });
}
}  // namespace detail

/// out (N, H) = g ⊙ x̂ + b with x̂ = (inp − mean) · rstd, rstd = 1/sqrt(var + eps).
/// Caches x̂ (N, H) and rstd (N): the backward of the input needs exactly these (the gain is a
/// parameter), so neither the input nor the output has to be kept for it.
template <class T>
void layernorm_forward(T* out, T* xhat, T* rstd, const T* inp, const T* g, const T* b, int N, int H,
                       double eps) {
#pragma omp parallel for schedule(static) if (N > 64)
  for (int n = 0; n < N; ++n) {
    const std::ptrdiff_t row = std::ptrdiff_t(n) * H;
    detail::layernorm_row(out + row, xhat + row, rstd[n], inp + row, g, b, H, eps);
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
      const std::ptrdiff_t row = std::ptrdiff_t(n) * H;
      detail::layernorm_backward_row(dinp + row, dout + row, xhat + row, rstd[n], g, H, true);
    }
  }
  detail::layernorm_param_grads<WeightGrad>(dg, db, dout, xhat, N, H);
}

}  // namespace bitfit
