#pragma once
/// @file bias_change.hpp
/// How far fine-tuning moved each bias term: the quantity of the BitFit paper's Figure 1
/// (Ben-Zaken et al. 2022, §4), for term t of layer l
///
///     change(t, l) = (1 / dim b) · ‖b_F − b_0‖₁,   b = the bias t of layer l,
///
/// between the initial backbone (b_0) and the fine-tuned parameters (b_F): the mean absolute
/// change of one bias vector. The paper's finding is that bq and bm2 move most, which motivates
/// its two-term variant (`bitfit_bq_bm2`).

#include <bitfit/core/error.hpp>
#include <bitfit/model/config.hpp>
#include <bitfit/model/params.hpp>
#include <bitfit/train/mask.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace bitfit {

/// The mean absolute change of every per-layer bias term, a (terms × layers) table.
struct bias_change {
  std::vector<term> terms;   ///< rows, top to bottom: the eight layer terms bq … bLN2
  int layers = 0;            ///< columns: encoder layers 0 … L-1
  std::vector<double> value; ///< (terms.size(), layers) row-major: value[row * layers + layer]

  /// The row of `t` in `terms`; throws if the table has no such row.
  std::size_t row(term t) const {
    const auto it = std::find(terms.begin(), terms.end(), t);
    check(it != terms.end(), "bias_change: no row for term " + std::string(term_name(t)));
    return std::size_t(it - terms.begin());
  }
  /// (1/dim b) · ‖b_F − b_0‖₁ of term `t` in layer `layer`; throws if either is out of range.
  double at(term t, int layer) const {
    check(layer >= 0 && layer < layers, "bias_change: layer " + std::to_string(layer) + " out of range [0, " +
                                            std::to_string(layers) + ")");
    return value[row(t) * std::size_t(layers) + std::size_t(layer)];
  }
  /// The largest value of the table (0 for an empty one); NaN entries are ignored.
  double max() const {
    double m = 0.0;
    for (double v : value)
      if (v > m) m = v;
    return m;
  }
};

namespace detail {
/// Throws unless `before` and `after` have the same shape (the fields that size a tensor).
inline void check_same_shape(const bert_config& before, const bert_config& after) {
  auto same = [](int b, int a, const char* field) {
    check(b == a, std::string("bias_change_between: the two models differ in ") + field + " (" +
                      std::to_string(b) + " before, " + std::to_string(a) + " after)");
  };
  same(before.hidden_size, after.hidden_size, "hidden_size");
  same(before.num_hidden_layers, after.num_hidden_layers, "num_hidden_layers");
  same(before.num_attention_heads, after.num_attention_heads, "num_attention_heads");
  same(before.intermediate_size, after.intermediate_size, "intermediate_size");
  same(before.vocab_size, after.vocab_size, "vocab_size");
  same(before.max_position_embeddings, after.max_position_embeddings, "max_position_embeddings");
  same(before.type_vocab_size, after.type_vocab_size, "type_vocab_size");
}
}  // namespace detail

/// The paper's Figure 1 table between the initial parameters `before` (b_0) and the fine-tuned
/// `after` (b_F): one row per layer term (bq, bk, bv, bm1, bLN1, bm2, bm3, bLN2), one column per
/// layer. Reads only the bias block, so bias-only buffers and bf16 backbones work. Sums in double.
/// Throws bitfit::error if the two configurations differ in shape.
template <class T>
bias_change bias_change_between(const bert_params<T>& before, const bert_params<T>& after) {
  detail::check_same_shape(before.config, after.config);
  bias_change out;
  out.terms.assign(layer_terms.begin(), layer_terms.end());
  out.layers = before.config.num_hidden_layers;
  out.value.assign(out.terms.size() * std::size_t(out.layers), 0.0);
  for (const param_entry& e : before.layout.entries) {
    if (!e.is_bias || e.layer < 0) continue;
    const T* b0 = before.bias(e.bias_term, e.layer);  // the term's own slice (bq/bk/bv inside b_qkv)
    const T* bF = after.bias(e.bias_term, e.layer);
    double l1 = 0.0;
    for (std::size_t i = 0; i < e.numel; ++i) l1 += std::abs(double(bF[i]) - double(b0[i]));
    out.value[out.row(e.bias_term) * std::size_t(out.layers) + std::size_t(e.layer)] =
        e.numel ? l1 / double(e.numel) : 0.0;
  }
  return out;
}

}  // namespace bitfit
