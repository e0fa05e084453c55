#pragma once
/// @file linear.hpp
/// Dense layer y = x W^T + b with PyTorch's (out, in) weight layout.

#include <bitfit/core/view.hpp>

namespace bitfit {

/// out (N, O) = inp (N, I) · W^T (O, I) + b (O).
/// Caches nothing: the input is needed only for dW, so a bias-only caller never keeps it.
template <class T>
void linear_forward(T* out, const T* inp, const T* W, const T* b, int N, int I, int O) {
  auto y = as_matrix(out, N, O);
  y.noalias() = as_matrix(inp, N, I) * as_matrix(W, O, I).transpose();
  if (b) y.rowwise() += as_vector(b, O).transpose();
}

/// Backward of linear_forward. Accumulates (+=) into every gradient it is given:
///   dinp (N, I) += dout · W   (skipped when dinp is null: nothing below needs it)
///   db   (O)    += sum over tokens of dout   (skipped when db is null)
///   dW   (O, I) += dout^T · inp  only in the `WeightGrad` instantiation: a bias-only caller
///                 instantiates `linear_backward<false>`, which contains no dW code at all.
template <bool WeightGrad, class T>
void linear_backward(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W, int N, int I,
                     int O) {
  auto dy = as_matrix(dout, N, O);
  if (dinp) as_matrix(dinp, N, I).noalias() += dy * as_matrix(W, O, I);
  if (db) as_vector(db, O) += dy.colwise().sum().transpose();
  if constexpr (WeightGrad) {
    if (dW) as_matrix(dW, O, I).noalias() += dy.transpose() * as_matrix(inp, N, I);
  }
}

}  // namespace bitfit
