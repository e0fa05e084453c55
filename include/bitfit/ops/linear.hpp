#pragma once
/// @file linear.hpp
/// Dense layer y = x W^T + b with PyTorch's (out, in) weight layout. The products go through the
/// GEMM seam (gemm.hpp): fp32 weights `W`, or frozen weights stored in bf16 (`W16`, W null).

#include <bitfit/core/buffer.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/core/view.hpp>
#include <bitfit/ops/gemm.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <vector>

namespace bitfit {

namespace detail {
/// rows (N, O) += b (O), one bias row added to each.
template <class T>
void add_bias_rows(T* out, const T* b, int N, int O) {
  as_matrix(out, N, O).rowwise() += as_vector(b, O).transpose();
}
}  // namespace detail

/// How linear_forward multiplies fp32 weights: the fastest GEMM, or gemm_abt_fixed_order(),
/// whose rows do not depend on one another on any CPU (slower; for inference that must not
/// depend on its company where gemm_rows_stable() is false).
enum class product_order { fastest, fixed };

/// out (N, O) = inp (N, I) · W^T (O, I) + b (O), with W in fp32 or, when `W16` is given, in bf16
/// (`order` concerns fp32 weights; bf16 ones run only where gemm_rows_stable()).
/// Caches nothing: the input is needed only for dW, so a bias-only caller never keeps it.
template <class T>
void linear_forward(T* out, const T* inp, const T* W, const T* b, int N, int I, int O,
                    const bf16* W16 = nullptr, product_order order = product_order::fastest) {
  if constexpr (std::is_same_v<T, float>) {
    if (W16) {
      gemm_abt(out, inp, W16, N, O, I, false);
    } else {
      check(W != nullptr, "linear_forward: no weights (a bias-only buffer?)");
      if (order == product_order::fixed)
        gemm_abt_fixed_order(out, inp, W, N, O, I);
      else
        gemm_abt(out, inp, W, N, O, I, false);
    }
  } else {
    gemm_abt(out, inp, W, N, O, I, false);
  }
  if (b) detail::add_bias_rows(out, b, N, O);
}

/// db (O) += Σ_n dout (N, O), the rows of dout being `stride` elements apart (default O).
/// A plain token-by-token sum rather than Eigen's colwise().sum(): the latter peels elements up to
/// the first packet-aligned address of db, so its rounding would depend on where db lives.
template <class T>
void bias_backward(T* db, const T* dout, int N, int O, int stride = 0) {
  const std::size_t s = std::size_t(stride ? stride : O);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) db[o] += dout[std::size_t(n) * s + std::size_t(o)];
}

/// Backward of linear_forward. Accumulates (+=) into every gradient it is given:
///   dinp (N, I) += dout · W   (skipped when dinp is null: nothing below needs it; written, not
///                              accumulated, when `accumulate_dinp` is false: saves zeroing it)
///   db   (O)    += sum over tokens of dout   (skipped when db is null)
///   dW   (O, I) += dout^T · inp  only in the `WeightGrad` instantiation: a bias-only caller
///                 instantiates `linear_backward<false>`, which contains no dW code at all.
///   With bf16 weights (`W16`) the input gradient is computed from them; dW needs fp32 weights.
template <bool WeightGrad, class T>
void linear_backward(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W, int N, int I,
                     int O, const bf16* W16 = nullptr, bool accumulate_dinp = true) {
  if (dinp) {
    if constexpr (std::is_same_v<T, float>) {
      if (W16) gemm_ab(dinp, dout, W16, N, I, O, accumulate_dinp);
      else gemm_ab(dinp, dout, W, N, I, O, accumulate_dinp);
    } else {
      gemm_ab(dinp, dout, W, N, I, O, accumulate_dinp);
    }
  }
  if (db) bias_backward(db, dout, N, O);
  if constexpr (WeightGrad) {
    if (dW) gemm_atb_accumulate(dW, dout, inp, O, I, N);
  }
}

/// dW (O, I) += dout^T · inp, but only at the entries where keep (O, I) is non-zero: the weight
/// gradient of the paper's random-subset baselines (rand_uniform, rand_row_col), which train
/// ~0.1% of the entries. Each kept entry is one dot product over the N tokens, of a column of
/// dout and a column of inp; inp's columns are transposed once per call (only those some kept
/// entry reads) so that every dot product is contiguous. Entries keep marks 0 are not touched.
/// A dense dW GEMM costs 2·N·O·I flops whatever the subset; this costs ~2·N·(kept + I).
template <class T>
void linear_weight_backward_subset(T* dW, const unsigned char* keep, const T* dout, const T* inp, int N, int I,
                                   int O) {
  using vec = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
  const std::size_t n = std::size_t(N), in = std::size_t(I), out = std::size_t(O);
  // Every row of inpT and col starts on a 64-byte boundary (buffer.hpp), so that each dot
  // product's rounding depends on its inputs only, not on where the scratch lies: a resumed run
  // must repeat an uninterrupted one bit for bit.
  constexpr std::size_t per_line = detail::buffer_alignment / sizeof(T);
  const std::size_t stride = (n + per_line - 1) / per_line * per_line;
  std::vector<unsigned char> needed(in, 0);
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t i = 0; i < in; ++i) needed[i] |= keep[o * in + i];
  // (I, stride): inp's columns that a kept entry reads. Kept between calls (a training step makes
  // ~6 per layer): a fresh buffer would be zeroed and faulted in, megabytes each time. It is the
  // calling thread's; the parallel regions reach it through inpT, never by name (in a worker
  // thread the name is another, empty, thread_local buffer).
  static thread_local buffer<T> scratch;
  if (scratch.size() < in * stride) scratch.resize(in * stride);
  T* const inpT = scratch.data();
#pragma omp parallel for schedule(static) if (N * I > 65536)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(in); ++i)
    if (needed[std::size_t(i)])
      for (std::size_t t = 0; t < n; ++t) inpT[std::size_t(i) * stride + t] = inp[t * in + std::size_t(i)];
#pragma omp parallel if (N * O > 65536)
  {
    buffer<T> col(n);  // dout[:, o]
#pragma omp for schedule(dynamic, 16)
    for (std::ptrdiff_t o = 0; o < std::ptrdiff_t(out); ++o) {
      const unsigned char* k = keep + std::size_t(o) * in;
      bool gathered = false;
      for (std::size_t i = 0; i < in; ++i) {
        if (!k[i]) continue;
        if (!gathered) {
          for (std::size_t t = 0; t < n; ++t) col[t] = dout[t * out + std::size_t(o)];
          gathered = true;
        }
        dW[std::size_t(o) * in + i] += vec(col.data(), N).dot(vec(inpT + i * stride, N));
      }
    }
  }
}

}  // namespace bitfit
