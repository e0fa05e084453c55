#pragma once
/// @file adamw.hpp
/// Adam and AdamW (Loshchilov & Hutter 2019) with bias correction, exactly as torch.optim.AdamW /
/// torch.optim.Adam compute them, plus global-norm gradient clipping as
/// torch.nn.utils.clip_grad_norm_.

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace bitfit {

struct adamw_config {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  ///< the paper trains without weight decay
  bool decoupled = true;      ///< true: AdamW (decay applied to the weights); false: Adam (L2 in the gradient)
};

/// First and second moments of one parameter span.
template <class T>
struct adam_moments {
  std::vector<T> m, v;
  explicit adam_moments(std::size_t n = 0) : m(n, T(0)), v(n, T(0)) {}
};

/// One update of `param` from `grad` at step `t` (1-based) with learning rate `lr`. With
/// `lr == 0` the moments still advance (as torch's do for a parameter group of rate 0) and
/// `param` stays bit for bit as it was (subtracting 0·m/denom would turn a -0.0 into +0.0).
template <class T>
void adamw_update(std::span<T> param, std::span<const T> grad, adam_moments<T>& s,
                  const adamw_config& c, double lr, long t) {
  const double bc1 = 1.0 - std::pow(c.beta1, double(t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(c.beta2, double(t)));
  const T b1 = T(c.beta1), b2 = T(c.beta2);
  // 1 - beta in double, then rounded, as torch passes it: in float, 1 - 0.999f is 1.3e-5 off 0.001.
  const T one_minus_b1 = T(1.0 - c.beta1), one_minus_b2 = T(1.0 - c.beta2);
  const T step = T(lr / bc1), decay = T(1.0 - lr * c.weight_decay);
  const bool moves = lr != 0.0;
  for (std::size_t i = 0; i < param.size(); ++i) {
    T g = grad[i];
    if (c.decoupled) {
      if (c.weight_decay != 0.0) param[i] *= decay;
    } else if (c.weight_decay != 0.0) {
      g += T(c.weight_decay) * param[i];
    }
    s.m[i] = b1 * s.m[i] + one_minus_b1 * g;
    s.v[i] = b2 * s.v[i] + one_minus_b2 * g * g;
    const T denom = std::sqrt(s.v[i]) / T(bc2_sqrt) + T(c.eps);
    if (moves) param[i] -= step * s.m[i] / denom;
  }
}

/// Sum of squares of a gradient span (accumulated in double for a stable global norm).
template <class T>
double squared_norm(std::span<const T> g) {
  double s = 0;
  for (T x : g) s += double(x) * double(x);
  return s;
}

/// Scales every span by min(1, max_norm / (norm + 1e-6)) as clip_grad_norm_; returns the norm
/// before clipping. max_norm <= 0 disables clipping.
template <class T>
double clip_global_norm(std::span<const std::span<T>> grads, double max_norm) {
  double sq = 0;
  for (auto g : grads) sq += squared_norm(std::span<const T>(g));
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const T coef = T(max_norm / (norm + 1e-6));
    for (auto g : grads)
      for (auto& x : g) x *= coef;
  }
  return norm;
}

}  // namespace bitfit
