#pragma once
/// @file head.hpp
/// Task heads, dropout -> linear: on the pooler output (B, H), as HF BertForSequenceClassification,
/// or on every token's last hidden state (N, H), as BertForTokenClassification (the pooler is then
/// not run). num_labels == 1 is regression (MSE, STS-B); otherwise classification (cross-entropy).
/// Losses are means over the scored rows, as torch's defaults.

#include <bitfit/core/error.hpp>
#include <bitfit/data/token_labels.hpp>
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
  /// On every token's last hidden state (BertForTokenClassification; the pooler is not run), not
  /// on the pooler output of each sequence.
  bool per_token = false;
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
/// backward needs for dW. Row-wise: a token head passes the N rows of the last hidden state.
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

/// Mean cross-entropy over the rows whose label is not ignore_label (data/token_labels.hpp); writes dlogits (rows, C) =
/// (softmax − onehot) / n for them, 0 for ignored rows. Sequence heads pass one label per
/// sequence, token heads one per token (torch's CrossEntropyLoss with ignore_index=-100). With no
/// scored row the loss is 0 (torch gives NaN) and so is every gradient.
template <class T>
double cross_entropy(T* dlogits, const T* logits, std::span<const int> labels, int C) {
  const auto rows = labels.size();
  const auto n = double(std::ranges::count_if(labels, [](int y) { return y != ignore_label; }));
  double loss = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* z = logits + r * std::size_t(C);
    T* dz = dlogits + r * std::size_t(C);
    const int y = labels[r];
    if (y == ignore_label) {
      std::fill_n(dz, C, T(0));
      continue;
    }
    check(y >= 0 && y < C, "label " + std::to_string(y) + " outside [0, " + std::to_string(C) + ")");
    const T mx = *std::max_element(z, z + C);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(double(z[c] - mx));
    loss += std::log(sum) - double(z[y] - mx);
    for (int c = 0; c < C; ++c) dz[c] = T((std::exp(double(z[c] - mx)) / sum - (c == y ? 1.0 : 0.0)) / n);
  }
  return n > 0 ? loss / n : 0.0;
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
