#pragma once
/// @file encoder_mixed.hpp
/// Inference over a packed batch whose sequences belong to different tasks, each with bias terms
/// of its own over one shared, frozen backbone (BitFit's multi-task promise, paper §1).
///
/// Every weight product runs once over the whole batch, without its bias; each bias is added
/// in the element-wise pass after the product, per segment of consecutive sequences that share
/// a task. Those passes are row-wise (attention is per sequence), so each sequence's result is
/// the same whatever it is batched with, as long as the products give each row the same result
/// whatever the other rows are: they run with at least row_stable_rows rows, from where oneDNN's
/// fp32 GEMM does (tests/test_gemm.cpp, tests/test_task_bank.cpp).

#include <bitfit/model/encoder.hpp>

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

namespace bitfit {

/// Sequences [first, last) of a packed batch use the bias terms of `biases` (a bias-only or full
/// bert_params of the backbone's config: only its bias views are read).
template <class T>
struct bias_segment {
  int first = 0, last = 0;
  const bert_params<T>* biases = nullptr;
};

namespace detail {
/// out (N, O) = inp (N, I) · W^T (+ b), each row independent of the others: through a product of
/// at least row_stable_rows rows where the GEMM promises that (gemm_rows_stable(), and bf16
/// weights, which only AVX-512 machines have), else through gemm_abt_fixed_order().
template <class T>
void linear_forward_row_stable(T* out, const T* inp, const T* W, const T* b, int N, int I, int O,
                               const bf16* W16 = nullptr) {
  if (std::is_same_v<T, float> && !W16 && !gemm_rows_stable())
    return linear_forward(out, inp, W, b, N, I, O, W16, product_order::fixed);
  if (N >= row_stable_rows) return linear_forward(out, inp, W, b, N, I, O, W16);
  thread_local std::vector<T> in_pad, out_pad;
  in_pad.assign(std::size_t(row_stable_rows) * I, T(0));
  out_pad.resize(std::size_t(row_stable_rows) * O);
  std::copy_n(inp, std::size_t(N) * I, in_pad.data());
  linear_forward(out_pad.data(), in_pad.data(), W, b, row_stable_rows, I, O, W16);
  std::copy_n(out_pad.data(), std::size_t(N) * O, out);
}
}  // namespace detail

/// Evaluation-mode forward (no dropout, nothing kept for a backward) of a batch whose segments
/// (ascending, covering every sequence) each name their bias terms. Gains (LayerNorm weights)
/// and matrices come from `p`. Fills st.last_hidden, st.cls and, when st.run_pooler, st.pooled.
template <class T>
void encoder_forward_mixed(encoder_state<T>& st, const bert_params<T>& p, const token_batch& batch,
                           std::span<const bias_segment<T>> segments) {
  const bert_config& c = p.config;
  const int N = batch.tokens(), B = batch.size(), H = c.hidden_size, I = c.intermediate_size,
            L = c.num_hidden_layers, A = c.num_attention_heads;
  check(B > 0, "encoder_forward_mixed: empty batch");
  batch.validate(c.vocab_size, c.type_vocab_size, c.max_position_embeddings);
  int covered = 0;
  for (const auto& s : segments) {
    check(s.first == covered && s.last > s.first && s.biases != nullptr && s.biases->config.hidden_size == H &&
              s.biases->config.num_hidden_layers == L && s.biases->config.intermediate_size == I,
          "encoder_forward_mixed: segments must cover the batch in order, with biases of the backbone's shape");
    covered = s.last;
  }
  check(covered == B, "encoder_forward_mixed: segments cover " + std::to_string(covered) + " of " +
                          std::to_string(B) + " sequences");
  const std::span<const int> offs(batch.offsets);
  auto rows = [&](const bias_segment<T>& s) { return std::pair{offs[std::size_t(s.first)], offs[std::size_t(s.last)]}; };

  const std::size_t NH = std::size_t(N) * H;
  st.lowest = L;
  st.hidden.resize(2);
  for (auto& h : st.hidden) h.resize(NH);
  st.caches.resize(1);
  st.caches[0].resize(N, attention_cache_size(offs, A), c, false);
  st.scratch.resize(N, c, false);
  auto& cache = st.caches[0];
  auto& s = st.scratch;

  // Embeddings: LN(word + pos + type) with each segment's LayerNorm bias.
  st.emb_xhat.resize(NH), st.emb_rstd.resize(std::size_t(N));
  T* x = st.hidden[0].data();
  embedding_forward(s.a.data(), batch.ids.data(), batch.positions.data(), batch.type_ids.data(), p.word, p.pos,
                    p.type, N, H);
  for (const auto& seg : segments) {
    const auto [r0, r1] = rows(seg);
    layernorm_forward(x + std::size_t(r0) * H, st.emb_xhat.data() + std::size_t(r0) * H, st.emb_rstd.data() + r0,
                      s.a.data() + std::size_t(r0) * H, p.emb_gLN, seg.biases->emb_bLN, r1 - r0, H, c.layer_norm_eps);
  }

  // The layers, as encoder_layer_forward<no_grad> with every bias add split by segment.
  for (int l = 0; l < L; ++l) {
    const auto& lp = p.layers[std::size_t(l)];
    const T* inp = st.hidden[std::size_t(l % 2)].data();
    T* out = st.hidden[std::size_t((l + 1) % 2)].data();
    T *ctx = s.a.data(), *h = s.b.data(), *h3 = s.c.data(), *h4 = s.i1.data();
    const auto at = [](auto* base, int r, int width) { return base + std::size_t(r) * std::size_t(width); };
    detail::linear_forward_row_stable(cache.qkv.data(), inp, lp.Wqkv, static_cast<const T*>(nullptr), N, H, 3 * H, lp.Wqkv16);
    for (const auto& seg : segments) {
      const auto [r0, r1] = rows(seg);
      detail::add_bias_rows(at(cache.qkv.data(), r0, 3 * H), seg.biases->layers[std::size_t(l)].bqkv, r1 - r0, 3 * H);
    }
    attention_forward(ctx, cache.P.data(), cache.qkv.data(), offs, H, A);
    // y = LN(hh + b + res) with the segment's dense bias b and LayerNorm bias.
    auto residual_ln = [&](T* y, T* xhat, T* rstd, const T* hh, const T* res, const T* g, T* layer_params<T>::*b,
                           T* layer_params<T>::*bLN) {
      for (const auto& seg : segments) {
        const auto [r0, r1] = rows(seg);
        const auto& sb = seg.biases->layers[std::size_t(l)];
        residual_layernorm_forward(at(y, r0, H), at(xhat, r0, H), rstd + r0, at(hh, r0, H), sb.*b, at(res, r0, H), g,
                                   sb.*bLN, r1 - r0, H, c.layer_norm_eps);
      }
    };
    detail::linear_forward_row_stable(h, ctx, lp.Wm1, static_cast<const T*>(nullptr), N, H, H, lp.Wm116);
    residual_ln(h3, cache.xhat1.data(), cache.rstd1.data(), h, inp, lp.gLN1, &layer_params<T>::bm1, &layer_params<T>::bLN1);
    detail::linear_forward_row_stable(cache.h4pre.data(), h3, lp.Wm2, static_cast<const T*>(nullptr), N, H, I, lp.Wm216);
    for (const auto& seg : segments) {
      const auto [r0, r1] = rows(seg);
      bias_gelu_forward(at(h4, r0, I), at(cache.h4pre.data(), r0, I), at(cache.h4pre.data(), r0, I),
                        seg.biases->layers[std::size_t(l)].bm2, r1 - r0, I, c.activation());
    }
    detail::linear_forward_row_stable(h, h4, lp.Wm3, static_cast<const T*>(nullptr), N, I, H, lp.Wm316);
    residual_ln(out, cache.xhat2.data(), cache.rstd2.data(), h, h3, lp.gLN2, &layer_params<T>::bm3, &layer_params<T>::bLN2);
  }
  st.last_hidden = st.hidden[std::size_t(L % 2)].data();

  // Pooler on the [CLS] rows, each with its segment's pooler bias.
  st.cls.resize(std::size_t(B) * H), st.pooled.resize(st.run_pooler ? std::size_t(B) * H : 0);
  for (int b = 0; b < B; ++b)
    std::copy_n(st.last_hidden + std::size_t(offs[std::size_t(b)]) * H, H, st.cls.data() + std::size_t(b) * H);
  if (!st.run_pooler) return;
  detail::linear_forward_row_stable(st.pooled.data(), st.cls.data(), p.pooler_W, static_cast<const T*>(nullptr), B, H, H);
  for (const auto& seg : segments)
    detail::add_bias_rows(st.pooled.data() + std::size_t(seg.first) * H, seg.biases->pooler_b, seg.last - seg.first, H);
  for (auto& v : st.pooled) v = std::tanh(v);
}

}  // namespace bitfit
