#pragma once
/// @file residual_layernorm.hpp
/// The tail of every BERT sub-layer ("Add & Norm", with the sub-layer's bias and dropout folded
/// in): out = LN(dropout(h + b) + res), where h is the output of the sub-layer's last GEMM
/// without its bias and res the sub-layer's input. Unfused this is four passes over (N, H)
/// arrays (bias add, dropout, residual add, LayerNorm); fused, each row is built, normalised and
/// written while it sits in L1.
/// Bit-identical to linear_forward's bias add, dropout_forward (same site, element index n·H + h),
/// the residual `+=` and layernorm_forward, so the two may be mixed freely: both call the same
/// row kernel, and the dropout select is a bitwise and, which keeps the compiler from fusing the
/// scale multiply into the residual add.

#include <bitfit/ops/dropout.hpp>
#include <bitfit/ops/layernorm.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace bitfit {

/// out (N, H) = g ⊙ x̂ + bLN, x̂ = LN-normalised h' = dropout(h + b) + res, with h, res (N, H),
/// b (H) the bias of the layer that produced h (may be null: h already has it), g, bLN (H).
/// The dropout is `drop` (may be inactive) with element index n·H + h, as dropout_forward over
/// the whole (N, H) array with first = 0.
/// Caches x̂ (N, H) and rstd (N), exactly what layernorm_forward caches: the backward needs
/// nothing else (h' itself is not kept; the dropout mask is regenerated from the site).
/// x̂ doubles as the staging buffer of each row's h', so it must not alias h or res; out must not
/// alias any input either.
template <class T>
void residual_layernorm_forward(T* out, T* xhat, T* rstd, const T* h, const T* b, const T* res,
                                const T* g, const T* bLN, int N, int H, double eps,
                                const dropout_site& drop = {}) {
  constexpr int C = detail::dropout_chunk;
  const bool dropping = drop.active();
  const T scale = dropping ? T(1.0 / (1.0 - drop.p)) : T(1);
  const std::int64_t threshold = dropping ? detail::dropout_threshold(drop.p) : 0;
#pragma omp parallel for schedule(static) if (N > 64)
  for (int n = 0; n < N; ++n) {
    const std::ptrdiff_t row = std::ptrdiff_t(n) * H;
    T* x = xhat + row;  // h', normalised in place into x̂ by layernorm_row
    for (int c = 0; c < H; c += C) {
      const int len = std::min(C, H - c);
      const T* hc = h + row + c;
      const T* rc = res + row + c;
      T* xc = x + c;
      if (dropping) {
        detail::mask_bits<T> keep[C];
        detail::dropout_masks(keep, len, drop, threshold, std::uint64_t(row + c));
        if (b) {
          for (int j = 0; j < len; ++j) xc[j] = detail::apply_mask((hc[j] + b[c + j]) * scale, keep[j]) + rc[j];
        } else {
          for (int j = 0; j < len; ++j) xc[j] = detail::apply_mask(hc[j] * scale, keep[j]) + rc[j];
        }
      } else if (b) {
        for (int j = 0; j < len; ++j) xc[j] = (hc[j] + b[c + j]) + rc[j];
      } else {
        for (int j = 0; j < len; ++j) xc[j] = hc[j] + rc[j];
      }
    }
    detail::layernorm_row(out + row, x, rstd[n], x, g, bLN, H, eps);
  }
}

/// Backward of residual_layernorm_forward, from the cached x̂ and rstd. With dh' the gradient of
/// h' = dropout(h + b) + res (layernorm_backward's input gradient):
///   dres (N, H) = dh'                  overwritten (may be null: nobody needs it)
///   dh   (N, H) = dropout'(dh')        overwritten: the gradient of h and of h + b
///   dbLN (H)   += Σ_n dout,  db (H) += Σ_n dh          (each may be null)
///   dg   (H)   += Σ_n dout ⊙ x̂  only in the `WeightGrad` instantiation
/// The parameter sums run in token order (as layernorm_backward and bias_backward).
/// dh may alias dout (the encoder's backward reuses one buffer for both); dres must not.
/// Bit-identical to layernorm_backward into a zeroed dres followed by dropout_backward.
template <bool WeightGrad, class T>
void residual_layernorm_backward(T* dh, T* dres, T* dg, T* dbLN, T* db, const T* dout, const T* xhat,
                                 const T* rstd, const T* g, int N, int H, const dropout_site& drop = {}) {
  // The sums over dout first: a row of dout is dead once its dh' is computed, so dh may take it.
  detail::layernorm_param_grads<WeightGrad>(dg, dbLN, dout, xhat, N, H);
  const bool dropping = drop.active();
  const T scale = dropping ? T(1.0 / (1.0 - drop.p)) : T(1);
  const std::int64_t threshold = dropping ? detail::dropout_threshold(drop.p) : 0;
#pragma omp parallel for schedule(static) if (N > 64)
  for (int n = 0; n < N; ++n) {
    const std::ptrdiff_t row = std::ptrdiff_t(n) * H;
    // dh', in dres or else in dh; layernorm_backward_row reads a block of dout before it writes
    // the same block, so dh' may land on dout's row.
    T* dsum = dres ? dres + row : dh + row;
    detail::layernorm_backward_row(dsum, dout + row, xhat + row, rstd[n], g, H, false);
    if (dropping) {
      detail::dropout_span(dh + row, dsum, H, drop, scale, threshold, std::uint64_t(row));
    } else if (dsum != dh + row) {
      std::copy_n(dsum, H, dh + row);
    }
  }
  if (db)
    detail::for_token_strips(N, H, [&](int n, int h0, int h1) {
      const T* d = dh + std::ptrdiff_t(n) * H;
      for (int k = h0; k < h1; ++k) db[k] += d[k];
    });
}

}  // namespace bitfit
