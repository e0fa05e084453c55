#pragma once
/// @file mask.hpp
/// Which bias terms are trained. The paper's notation (BitFit, Ben-Zaken et al. 2022, §2):
///   Q/K/V(x) = W x + b{q,k,v};  h2 = Dropout(W_m1 h1 + b_m1);  h3 = g_LN1 ⊙ norm(h2 + x) + b_LN1;
///   h4 = GELU(W_m2 h3 + b_m2);  h5 = Dropout(W_m3 h4 + b_m3);  out = g_LN2 ⊙ norm(h5 + h3) + b_LN2.
/// Besides those eight per-layer terms a mask may train the embedding LayerNorm bias and the
/// pooler bias. The task head is always trained.
///
/// A mask is a policy type. `trainable_mask<term::bq, term::bm2>` is resolved at compile time:
/// the backward is instantiated for it and contains no code for the terms it leaves out.
/// `runtime_mask` carries the same set as bits, for choices made on the command line.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace bitfit {

/// A bias term, in the paper's notation. `bk`'s gradient is identically zero: q·bk is added to
/// every logit of a softmax row, which the softmax cancels (see docs/BITFIT.md).
enum class term : std::uint8_t { bq, bk, bv, bm1, bLN1, bm2, bm3, bLN2, emb_bLN, pooler_b };

inline constexpr std::array<term, 10> all_terms = {term::bq,  term::bk,   term::bv,   term::bm1,
                                                   term::bLN1, term::bm2, term::bm3, term::bLN2,
                                                   term::emb_bLN, term::pooler_b};
/// The eight terms that every encoder layer has.
inline constexpr std::array<term, 8> layer_terms = {term::bq,  term::bk,   term::bv,  term::bm1,
                                                    term::bLN1, term::bm2, term::bm3, term::bLN2};

/// Paper name of a term ("bq", "bLN1", ...).
constexpr std::string_view term_name(term t) {
  constexpr std::array<std::string_view, 10> names = {"bq",  "bk",  "bv",   "bm1",     "bLN1",
                                                      "bm2", "bm3", "bLN2", "emb_bLN", "pooler_b"};
  return names[std::size_t(t)];
}

/// Name on the command line, as the original run_glue.py's `--bias_terms`.
constexpr std::string_view term_option_name(term t) {
  constexpr std::array<std::string_view, 10> names = {
      "query",        "key",    "value",           "attention_output",     "attention_layernorm",
      "intermediate", "output", "output_layernorm", "embeddings_layernorm", "pooler"};
  return names[std::size_t(t)];
}

namespace detail {
template <term... Terms>
constexpr bool distinct_terms() {
  constexpr std::array<term, sizeof...(Terms)> ts = {Terms...};
  for (std::size_t i = 0; i < ts.size(); ++i)
    for (std::size_t j = i + 1; j < ts.size(); ++j)
      if (ts[i] == ts[j]) return false;
  return true;
}
constexpr std::uint32_t bit(term t) { return std::uint32_t(1) << unsigned(t); }
}  // namespace detail

/// Compile-time set of trained bias terms (the paper's BitFit and its subsets).
template <term... Terms>
struct trainable_mask {
  static_assert(detail::distinct_terms<Terms...>(), "trainable_mask: a bias term is listed twice");
  static constexpr bool computes_grads = true;
  static constexpr bool weight_grads = false;  ///< no dW anywhere
  /// Whether the compiled backward may train `t` (exact for a static mask).
  static constexpr bool may_train(term t) { return ((t == Terms) || ...); }
  constexpr bool trains(term t) const { return may_train(t); }
  static constexpr std::uint32_t bits() { return (std::uint32_t(0) | ... | detail::bit(Terms)); }
};

/// All bias terms: the paper's BitFit.
using bitfit_all = trainable_mask<term::bq, term::bk, term::bv, term::bm1, term::bLN1, term::bm2,
                                  term::bm3, term::bLN2, term::emb_bLN, term::pooler_b>;
/// The paper's two-term variant (query and MLP-in biases), 0.04% of the parameters.
using bitfit_bq_bm2 = trainable_mask<term::bq, term::bm2>;
/// Head only: the paper's "frozen" baseline.
using frozen_mask = trainable_mask<>;

/// Every parameter, weights included: full fine-tuning (a separate instantiation, for comparison).
struct full_mask {
  static constexpr bool computes_grads = true;
  static constexpr bool weight_grads = true;
  static constexpr bool may_train(term) { return true; }
  constexpr bool trains(term) const { return true; }
};

/// Every bias and gain, and the weight entries a random subset marks: the paper's rand_uniform and
/// rand_row_col baselines (param_subset.hpp). A separate instantiation from full_mask because its
/// backward computes each weight gradient only at the marked entries
/// (linear_weight_backward_subset), not as a dense GEMM; the other gradients, cheap, are dense
/// and the trainer masks them. `keep` spans the flat parameter buffer (1 = trained) and
/// `grad_base` is the start of the gradient buffer, whose offsets match it.
struct weight_subset_mask {
  static constexpr bool computes_grads = true;
  static constexpr bool weight_grads = true;
  static constexpr bool weight_subset = true;
  static constexpr bool may_train(term) { return true; }
  constexpr bool trains(term) const { return true; }
  const unsigned char* keep = nullptr;
  const void* grad_base = nullptr;
  /// The marks of the gradient tensor at `grad` (a view into the gradient buffer).
  template <class T>
  const unsigned char* keep_of(const T* grad) const {
    return keep + (grad - static_cast<const T*>(grad_base));
  }
};

/// No gradients at all: inference. The forward keeps nothing for a backward.
struct no_grad {
  static constexpr bool computes_grads = false;
  static constexpr bool weight_grads = false;
  static constexpr bool may_train(term) { return false; }
  constexpr bool trains(term) const { return false; }
};

/// A bias-only set chosen at run time. Its backward is compiled for every term and tests the bits.
struct runtime_mask {
  static constexpr bool computes_grads = true;
  static constexpr bool weight_grads = false;
  static constexpr bool may_train(term) { return true; }
  std::uint32_t bits = 0;
  constexpr bool trains(term t) const { return (bits & detail::bit(t)) != 0; }
  constexpr runtime_mask& add(term t) {
    bits |= detail::bit(t);
    return *this;
  }
};

/// A mask policy: trainable_mask<...>, full_mask, weight_subset_mask, no_grad or runtime_mask.
template <class M>
concept mask_policy = requires(const M m, term t) {
  { M::computes_grads } -> std::convertible_to<bool>;
  { M::weight_grads } -> std::convertible_to<bool>;
  { M::may_train(t) } -> std::convertible_to<bool>;
  { m.trains(t) } -> std::convertible_to<bool>;
};

/// Whether a policy computes weight gradients only at marked entries (weight_subset_mask).
template <mask_policy M>
inline constexpr bool is_weight_subset = requires { requires M::weight_subset; };

/// Whether the mask trains any per-layer term.
template <mask_policy M>
constexpr bool trains_any_layer_term(const M& m) {
  for (term t : layer_terms)
    if (m.trains(t)) return true;
  return false;
}

}  // namespace bitfit
