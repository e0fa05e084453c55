#pragma once
/// @file head.hpp
/// Task heads on the pooler output, as HF BertForSequenceClassification: dropout -> linear.
/// num_labels == 1 is regression (MSE, STS-B); otherwise classification (cross-entropy).
/// Losses are means over the batch, as torch's defaults.

#include <bitfit/core/error.hpp>
#include <bitfit/ops/dropout.hpp>
#include <bitfit/ops/linear.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace bitfit {

/// The trainable task head: W (C, H), b (C).
template <class T>
struct task_head {
  int C = 0, H = 0;
  std::vector<T> W;  // (C, H)
  std::vector<T> b;  // (C)

  task_head() = default;
  task_head(int num_labels, int hidden) : C(num_labels), H(hidden), W(std::size_t(num_labels) * hidden, T(0)), b(std::size_t(num_labels), T(0)) {}

  /// HF's initialisation: W ~ N(0, std), b = 0, drawn from a portable seeded generator.
  static task_head init(int num_labels, int hidden, std::uint64_t seed, double std = 0.02) {
    task_head h(num_labels, hidden);
    for (std::size_t i = 0; i < h.W.size(); i += 2) {
      // Box-Muller on two uniforms from the counter-based generator.
      const double u1 = (double(detail::mix64(seed ^ (2 * i + 1)) >> 11) + 1.0) * 0x1.0p-53;
      const double u2 = double(detail::mix64(seed ^ (2 * i + 2)) >> 11) * 0x1.0p-53;
      const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
      h.W[i] = T(std * r * std::cos(a));
      if (i + 1 < h.W.size()) h.W[i + 1] = T(std * r * std::sin(a));
    }
    return h;
  }
  bool regression() const { return C == 1; }
};

/// logits (B, C) = dropout(pooled) W^T + b. `x` (B, H) receives dropout(pooled), which the
/// backward needs for dW.
template <class T>
void head_forward(T* logits, T* x, const T* pooled, const task_head<T>& h, int B, const dropout_site& drop = {}) {
  dropout_forward(x, pooled, std::ptrdiff_t(B) * h.H, drop);
  linear_forward(logits, x, h.W.data(), h.b.data(), B, h.H, h.C);
}

/// dpooled (B, H) = dropout'(dlogits W); dW += dlogits^T x; db += Σ dlogits.
template <class T>
void head_backward(T* dpooled, task_head<T>& g, const T* dlogits, const T* x, const task_head<T>& h, int B,
                   const dropout_site& drop = {}) {
  std::fill_n(dpooled, std::size_t(B) * h.H, T(0));
  linear_backward<true>(dpooled, g.W.data(), g.b.data(), dlogits, x, h.W.data(), B, h.H, h.C);
  dropout_backward(dpooled, dpooled, std::ptrdiff_t(B) * h.H, drop);
}

/// Mean cross-entropy over the batch; writes dlogits (B, C) = (softmax − onehot) / B.
template <class T>
double cross_entropy(T* dlogits, const T* logits, std::span<const int> labels, int C) {
  const int B = int(labels.size());
  double loss = 0;
  for (int b = 0; b < B; ++b) {
    const T* z = logits + std::size_t(b) * C;
    T* dz = dlogits + std::size_t(b) * C;
    const int y = labels[std::size_t(b)];
    check(y >= 0 && y < C, "label " + std::to_string(y) + " outside [0, " + std::to_string(C) + ")");
    const T mx = *std::max_element(z, z + C);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(double(z[c] - mx));
    loss += std::log(sum) - double(z[y] - mx);
    for (int c = 0; c < C; ++c) dz[c] = T((std::exp(double(z[c] - mx)) / sum - (c == y ? 1.0 : 0.0)) / B);
  }
  return loss / B;
}

/// Mean squared error of a (B, 1) prediction; writes dpred = 2 (pred − target) / B.
template <class T>
double mean_squared_error(T* dpred, const T* pred, std::span<const float> targets) {
  const int B = int(targets.size());
  double loss = 0;
  for (int b = 0; b < B; ++b) {
    const double d = double(pred[b]) - targets[std::size_t(b)];
    loss += d * d;
    dpred[b] = T(2.0 * d / B);
  }
  return loss / B;
}

}  // namespace bitfit
