#pragma once
/// @file view.hpp
/// Row-major matrix views over raw buffers. Every parameter and activation in bitfit is a flat
/// buffer plus a shape comment; these maps are how the ops hand them to Eigen without copying.

#include <Eigen/Core>

#include <cstdint>

namespace bitfit {

template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// (rows, cols) row-major view of `data`.
template <class T>
Eigen::Map<row_matrix<T>> as_matrix(T* data, Eigen::Index rows, Eigen::Index cols) {
  return Eigen::Map<row_matrix<T>>(data, rows, cols);
}
template <class T>
Eigen::Map<const row_matrix<T>> as_matrix(const T* data, Eigen::Index rows, Eigen::Index cols) {
  return Eigen::Map<const row_matrix<T>>(data, rows, cols);
}

/// (rows, cols) view whose rows are `stride` elements apart: one head's slice of a (N, H) buffer.
template <class T>
using strided_map = Eigen::Map<row_matrix<std::remove_const_t<T>>, 0, Eigen::OuterStride<>>;
template <class T>
using const_strided_map = Eigen::Map<const row_matrix<std::remove_const_t<T>>, 0, Eigen::OuterStride<>>;

template <class T>
strided_map<T> as_strided(T* data, Eigen::Index rows, Eigen::Index cols, Eigen::Index stride) {
  return strided_map<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}
template <class T>
const_strided_map<T> as_strided(const T* data, Eigen::Index rows, Eigen::Index cols,
                                Eigen::Index stride) {
  return const_strided_map<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}

/// Column vector view of a bias or gain.
template <class T>
Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> as_vector(T* data, Eigen::Index n) {
  return Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(data, n);
}
template <class T>
Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> as_vector(const T* data, Eigen::Index n) {
  return Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(data, n);
}

}  // namespace bitfit
