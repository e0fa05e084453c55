#pragma once
/// @file encoder_layer.hpp
/// One BERT encoder layer (post-LayerNorm), forward and backward, instantiated per mask policy.
/// In the paper's notation (BitFit §2), for the layer input x:
///   q,k,v = x W_{q,k,v}^T + b_{q,k,v}            h1 = MultiHeadAttention(q, k, v)
///   h2 = Dropout(h1 W_m1^T + b_m1)               h3 = LN1(h2 + x)      (gain g_LN1, bias b_LN1)
///   h4 = GELU(h3 W_m2^T + b_m2)                  h5 = Dropout(h4 W_m3^T + b_m3)
///   out = LN2(h5 + h3)                           (gain g_LN2, bias b_LN2)

#include <bitfit/core/buffer.hpp>
#include <bitfit/model/config.hpp>
#include <bitfit/model/params.hpp>
#include <bitfit/ops/attention.hpp>
#include <bitfit/ops/dropout.hpp>
#include <bitfit/ops/gelu.hpp>
#include <bitfit/ops/layernorm.hpp>
#include <bitfit/ops/linear.hpp>
#include <bitfit/ops/residual_layernorm.hpp>
#include <bitfit/train/mask.hpp>

#include <algorithm>
#include <span>
#include <vector>

namespace bitfit {

/// The three dropout sites of a layer (inactive in evaluation).
struct layer_dropout {
  dropout_site attn;  ///< on the attention probabilities
  dropout_site h2;    ///< after W_m1
  dropout_site h5;    ///< after W_m3
};

/// What a layer's forward keeps for its backward, N tokens in the packed batch.
/// Bias-only policies keep (per token) 3H + H + 1 + I + H + 1 floats plus A·T attention
/// probabilities: q, k, v (attention backward), x̂ and rstd of both LayerNorms (their input
/// gradients), and the GELU input (its derivative). Full fine-tuning also keeps ctx (H), h3 (H)
/// and h4 (I), the inputs of W_m1, W_m2 and W_m3, for their weight gradients; the input x of
/// W_qkv is the previous layer's output, which the encoder keeps in that mode only.
template <class T>
struct layer_cache {
  buffer<T> qkv;    // (N, 3H)
  buffer<T> P;      // (A · Σ_b T_b²)
  buffer<T> xhat1;  // (N, H)
  buffer<T> rstd1;  // (N)
  buffer<T> h4pre;  // (N, I)
  buffer<T> xhat2;  // (N, H)
  buffer<T> rstd2;  // (N)
  buffer<T> ctx;    // (N, H)  full fine-tuning only
  buffer<T> h3;     // (N, H)  full fine-tuning only
  buffer<T> h4;     // (N, I)  full fine-tuning only

  void resize(int N, std::size_t attn, const bert_config& c, bool weight_grads) {
    const std::size_t n = std::size_t(N), H = std::size_t(c.hidden_size),
                      I = std::size_t(c.intermediate_size);
    qkv.resize(n * 3 * H), P.resize(attn), xhat1.resize(n * H), rstd1.resize(n);
    h4pre.resize(n * I), xhat2.resize(n * H), rstd2.resize(n);
    ctx.resize(weight_grads ? n * H : 0), h3.resize(weight_grads ? n * H : 0);
    h4.resize(weight_grads ? n * I : 0);
  }
  std::size_t floats() const {
    return qkv.size() + P.size() + xhat1.size() + rstd1.size() + h4pre.size() + xhat2.size() +
           rstd2.size() + ctx.size() + h3.size() + h4.size();
  }
};

/// Transient buffers shared by all layers (never kept between layers).
template <class T>
struct layer_scratch {
  buffer<T> a, b, c;  // (N, H) each
  buffer<T> i1, i2;   // (N, I) each
  buffer<T> dqkv;     // (N, 3H), backward only
  void resize(int N, const bert_config& c_, bool backward) {
    const std::size_t n = std::size_t(N), H = std::size_t(c_.hidden_size),
                      I = std::size_t(c_.intermediate_size);
    a.resize(n * H), b.resize(n * H), c.resize(n * H), i1.resize(n * I), i2.resize(n * I);
    dqkv.resize(backward ? n * 3 * H : 0);
  }
};

namespace detail {
/// linear_backward under `Mask`: dW as a dense GEMM (full_mask), only at the entries a random
/// subset marks (weight_subset_mask), or not at all (bias-only policies, which contain no dW code).
template <mask_policy Mask, class T>
void masked_linear_backward(const Mask& mask, T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W, int N,
                            int I, int O, const bf16* W16 = nullptr, bool accumulate_dinp = true) {
  constexpr bool subset = is_weight_subset<Mask>;
  linear_backward<Mask::weight_grads && !subset>(dinp, dW, db, dout, inp, W, N, I, O, W16, accumulate_dinp);
  if constexpr (subset) {
    if (dW) linear_weight_backward_subset(dW, mask.keep_of(dW), dout, inp, N, I, O);
  }
}
}  // namespace detail

/// out (N, H) = layer(inp (N, H)). Fills `cache` as described on layer_cache for `Mask`.
template <mask_policy Mask, class T>
void encoder_layer_forward(T* out, layer_cache<T>& cache, const T* inp, const layer_params<T>& p,
                           std::span<const int> offsets, const bert_config& cfg,
                           layer_scratch<T>& s, const layer_dropout& drop = {}) {
  const int N = offsets.back(), H = cfg.hidden_size, I = cfg.intermediate_size,
            A = cfg.num_attention_heads;
  constexpr bool full = Mask::weight_grads;
  T* ctx = full ? cache.ctx.data() : s.a.data();
  T* h3 = full ? cache.h3.data() : s.c.data();
  T* h4 = full ? cache.h4.data() : s.i1.data();
  T* h = s.b.data();  // h2, then h5, each summed with its residual in place

  // Each GEMM writes without its bias; the bias add is fused into the element-wise pass after it.
  linear_forward(cache.qkv.data(), inp, p.Wqkv, p.bqkv, N, H, 3 * H, p.Wqkv16);
  attention_forward(ctx, cache.P.data(), cache.qkv.data(), offsets, H, A, drop.attn);
  linear_forward(h, ctx, p.Wm1, static_cast<const T*>(nullptr), N, H, H, p.Wm116);
  residual_layernorm_forward(h3, cache.xhat1.data(), cache.rstd1.data(), h, p.bm1, inp, p.gLN1, p.bLN1, N, H,
                             cfg.layer_norm_eps, drop.h2);
  linear_forward(cache.h4pre.data(), h3, p.Wm2, static_cast<const T*>(nullptr), N, H, I, p.Wm216);
  bias_gelu_forward(h4, cache.h4pre.data(), cache.h4pre.data(), p.bm2, N, I, cfg.activation());
  linear_forward(h, h4, p.Wm3, static_cast<const T*>(nullptr), N, I, H, p.Wm316);
  residual_layernorm_forward(out, cache.xhat2.data(), cache.rstd2.data(), h, p.bm3, h3, p.gLN2, p.bLN2, N, H,
                             cfg.layer_norm_eps, drop.h5);
}

/// Backward of encoder_layer_forward for a gradient-computing policy.
/// dout (N, H) is read; dinp (N, H) is overwritten with the input gradient unless null (the
/// lowest layer that trains anything needs no input gradient). Accumulates into the gradient
/// views in `g` the terms that `mask` trains, and the weights only when Mask::weight_grads (for a
/// weight_subset_mask, only at its marked entries).
/// `inp` is the layer input, read only for dW_qkv (may be null in bias-only instantiations).
template <mask_policy Mask, class T>
void encoder_layer_backward(T* dinp, const layer_params<T>& g, const T* dout,
                            const layer_cache<T>& c, const T* inp, const layer_params<T>& p,
                            std::span<const int> offsets, const bert_config& cfg, const Mask& mask,
                            layer_scratch<T>& s, const layer_dropout& drop = {}) {
  static_assert(Mask::computes_grads, "encoder_layer_backward needs a gradient-computing mask");
  constexpr bool W = Mask::weight_grads;
  const int N = offsets.back(), H = cfg.hidden_size, I = cfg.intermediate_size,
            A = cfg.num_attention_heads;
  auto grad_of = [&](term t, T* view) -> T* {
    return Mask::may_train(t) && mask.trains(t) ? view : nullptr;
  };
  T* d_sum = s.a.data();  // dh3 (residual + MLP path), then d(h1 W_m1^T + b_m1)
  T* d_h = s.b.data();    // d(h4 W_m3^T + b_m3)
  T* d_ctx = s.c.data();
  T* d_mid = s.i2.data();  // dh4, then d(h4pre)
  constexpr bool overwrite = false;  // the input gradient of a GEMM that has no other path

  // out = LN2(Dropout(h4 W_m3^T + b_m3) + h3): d_h to the MLP, d_sum = the residual's share of dh3
  residual_layernorm_backward<W>(d_h, d_sum, g.gLN2, grad_of(term::bLN2, g.bLN2), grad_of(term::bm3, g.bm3), dout,
                                 c.xhat2.data(), c.rstd2.data(), p.gLN2, N, H, drop.h5);
  detail::masked_linear_backward(mask, d_mid, g.Wm3, static_cast<T*>(nullptr), d_h, W ? c.h4.data() : nullptr, p.Wm3,
                                 N, I, H, p.Wm316, overwrite);
  // h4 = GELU(h3 W_m2^T + b_m2); dh3 = residual + MLP path
  gelu_backward(d_mid, d_mid, c.h4pre.data(), std::ptrdiff_t(N) * I, cfg.activation());
  detail::masked_linear_backward(mask, d_sum, g.Wm2, grad_of(term::bm2, g.bm2), d_mid, W ? c.h3.data() : nullptr, p.Wm2,
                                 N, H, I, p.Wm216);
  // h3 = LN1(Dropout(h1 W_m1^T + b_m1) + x): d_sum (in place) to the attention output, and the
  // residual's share of dx straight into dinp (null when nothing below needs it)
  residual_layernorm_backward<W>(d_sum, dinp, g.gLN1, grad_of(term::bLN1, g.bLN1), grad_of(term::bm1, g.bm1), d_sum,
                                 c.xhat1.data(), c.rstd1.data(), p.gLN1, N, H, drop.h2);
  detail::masked_linear_backward(mask, d_ctx, g.Wm1, static_cast<T*>(nullptr), d_sum, W ? c.ctx.data() : nullptr, p.Wm1,
                                 N, H, H, p.Wm116, overwrite);
  // h1 = attention(q, k, v)
  attention_backward(s.dqkv.data(), d_ctx, c.qkv.data(), c.P.data(), offsets, H, A, drop.attn);
  // b_q, b_k, b_v: column sums of the three blocks of dqkv.
  const term qkv_terms[3] = {term::bq, term::bk, term::bv};
  for (int j = 0; j < 3; ++j) {
    T* db = grad_of(qkv_terms[j], g.bqkv ? g.bqkv + j * H : nullptr);
    if (db) bias_backward(db, s.dqkv.data() + j * H, N, H, 3 * H);
  }
  // x feeds both the residual into LN1 (already in dinp) and the q, k, v projections.
  detail::masked_linear_backward(mask, dinp, g.Wqkv, static_cast<T*>(nullptr), s.dqkv.data(), inp, p.Wqkv, N, H, 3 * H,
                                 p.Wqkv16);
}

}  // namespace bitfit
