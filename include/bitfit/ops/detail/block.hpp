#pragma once
/// @file block.hpp
/// Fixed-size blocks for the element-wise kernels (GELU, LayerNorm): a row is walked in blocks of
/// `block` elements, each loaded into an Eigen array of compile-time size, so Eigen evaluates the
/// expression in whole packets (its vectorised erf, tanh and exp for float) with no run-time
/// alignment peeling. The last, partial block is zero-padded and goes through the same packet
/// code, so an element's result depends on its inputs alone: not on its address, on where a row
/// starts, nor on how OpenMP splits the loop.

#include <Eigen/Core>

#include <cstddef>
#include <type_traits>

namespace bitfit::detail {

/// Elements per block: whole packets on every x86 target (4 floats for SSE, 8 for AVX, 16 for
/// AVX-512; half as many doubles).
inline constexpr int block = 16;

template <class T>
using block_array = Eigen::Array<T, block, 1>;

/// Elements [p, p + len) of a block, len <= block; the rest are zero.
template <class T>
block_array<T> load_block(const T* p, std::ptrdiff_t len) {
  if (len == block) return Eigen::Map<const block_array<T>>(p);
  block_array<T> x = block_array<T>::Zero();
  for (std::ptrdiff_t j = 0; j < len; ++j) x[j] = p[j];
  return x;
}

/// Writes the first len <= block elements of x (evaluated once, in packets) to p.
template <class T>
void store_block(T* p, const std::type_identity_t<block_array<T>>& x, std::ptrdiff_t len) {
  if (len == block) {
    Eigen::Map<block_array<T>> dst(p);
    dst = x;
  } else {
    for (std::ptrdiff_t j = 0; j < len; ++j) p[j] = x[j];
  }
}

/// Σ_j x[j] in lane order: partial sums kept per lane are added up in one fixed order, whatever
/// the packet width.
template <class T>
T lane_total(const block_array<T>& x) {
  T s = 0;
  for (int j = 0; j < block; ++j) s += x[j];
  return s;
}

}  // namespace bitfit::detail
