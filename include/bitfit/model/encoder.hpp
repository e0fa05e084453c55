#pragma once
/// @file encoder.hpp
/// The BERT encoder: embeddings + LayerNorm, L encoder layers, pooler (dense + tanh on [CLS]).
/// forward/backward are instantiated per mask policy. The backward runs down only to the lowest
/// part that trains anything: a head-only ("frozen") policy never enters the encoder, a policy
/// without the embedding LayerNorm bias (or with a first trainable layer above 0) stops at the
/// lowest trained layer, and layers below that are run forward without caching anything.

#include <bitfit/model/batch.hpp>
#include <bitfit/model/encoder_layer.hpp>
#include <bitfit/ops/embedding.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace bitfit {

/// Dropout of a training step (HF's hidden_dropout_prob and attention_probs_dropout_prob).
struct dropout_config {
  double hidden = 0.0;
  double attention = 0.0;
  std::uint64_t seed = 0;  ///< unique per step
  dropout_site site(std::uint64_t k, double p) const { return {p, detail::derive_seed(seed, k)}; }
  layer_dropout layer(int l) const {
    const std::uint64_t k = 16 + std::uint64_t(l) * 4;
    return {site(k, attention), site(k + 1, hidden), site(k + 2, hidden)};
  }
  dropout_site embeddings() const { return site(1, hidden); }
  dropout_site head() const { return site(2, hidden); }
};

/// Activations of one forward pass and what the backward needs from it.
template <class T>
struct encoder_state {
  int lowest = 0;                        ///< lowest trained part: -1 embeddings, l layer, L none
  std::vector<buffer<T>> hidden;       ///< layer inputs; all L+1 kept only for weight gradients
  buffer<T> emb_xhat, emb_rstd;         // (N, H), (N): embedding LayerNorm cache
  std::vector<layer_cache<T>> caches;  ///< one per trained layer, plus one reused by frozen ones if any
  layer_scratch<T> scratch;
  buffer<T> cls;                        // (B, H) the [CLS] rows of the last hidden state
  buffer<T> pooled;                     // (B, H) tanh(cls W_p^T + b_p); empty unless run_pooler
  bool run_pooler = true;               ///< sequence heads read the pooler; mean or [CLS] pooling do not
  const T* last_hidden = nullptr;       // (N, H) valid until the next forward
  buffer<T> dpre, dcls, dh, dnext;      // backward scratch: (B, H), (B, H), (N, H), (N, H)
  buffer<T> dlast;                      // (N, H) gradient on the last hidden state, from the pooler

  /// Floats kept for the backward (a measure of activation memory).
  std::size_t saved_floats() const {
    std::size_t n = emb_xhat.size() + emb_rstd.size() + cls.size() + pooled.size();
    for (const auto& c : caches) n += c.floats();
    for (const auto& h : hidden) n += h.size();
    return n;
  }
};

namespace detail {
/// Lowest part of the model the mask trains: -1 embeddings LayerNorm, l >= 0 a layer, L none.
/// With first_trainable_layer > 0 nothing below that layer trains, the embedding LayerNorm
/// (below layer 0) included; the pooler bias sits above every layer and is the backward's own.
template <mask_policy Mask>
int lowest_trained(const Mask& mask, int L, int first_trainable_layer) {
  if constexpr (!Mask::computes_grads) {
    return L;
  } else {
    if (first_trainable_layer <= 0 && mask.trains(term::emb_bLN)) return -1;
    if (trains_any_layer_term(mask)) return std::clamp(first_trainable_layer, 0, L);
    return L;
  }
}
}  // namespace detail

/// Runs the encoder on a packed batch. With a gradient policy it keeps what encoder_backward
/// needs for layers >= `first_trainable_layer` (layers below it and, when it is above 0, the
/// embedding LayerNorm are frozen in every policy but full).
template <mask_policy Mask, class T>
void encoder_forward(encoder_state<T>& st, const bert_params<T>& p, const token_batch& batch,
                     const Mask& mask, const dropout_config& drop = {},
                     int first_trainable_layer = 0) {
  const bert_config& c = p.config;
  const int N = batch.tokens(), B = batch.size(), H = c.hidden_size, L = c.num_hidden_layers;
  check(B > 0, "encoder_forward: empty batch");
  batch.validate(c.vocab_size, c.type_vocab_size, c.max_position_embeddings);
  constexpr bool W = Mask::weight_grads;
  st.lowest = detail::lowest_trained(mask, L, W ? 0 : first_trainable_layer);
  const std::size_t NH = std::size_t(N) * H;
  const int kept = W ? L + 1 : 2;  // layer inputs kept: all for dW_qkv, else ping-pong
  st.hidden.resize(std::size_t(kept));
  for (auto& h : st.hidden) h.resize(NH);
  auto hid = [&](int l) { return st.hidden[std::size_t(W ? l : l % 2)].data(); };
  const std::span<const int> offs(batch.offsets);
  const std::size_t attn = attention_cache_size(offs, c.num_attention_heads);
  const int trained_layers = Mask::computes_grads ? L - std::max(st.lowest, 0) : 0;
  const bool any_frozen = trained_layers < L;
  st.caches.resize(std::size_t(trained_layers + (any_frozen ? 1 : 0)));  // the last one serves frozen layers
  for (int i = 0; i < trained_layers; ++i) st.caches[std::size_t(i)].resize(N, attn, c, W);
  if (any_frozen) st.caches.back().resize(N, attn, c, false);
  st.scratch.resize(N, c, Mask::computes_grads && st.lowest < L);

  // Embeddings: LN(word + pos + type), then dropout.
  st.emb_xhat.resize(NH), st.emb_rstd.resize(std::size_t(N));
  T* e = st.scratch.a.data();
  embedding_forward(e, batch.ids.data(), batch.positions.data(), batch.type_ids.data(), p.word, p.pos, p.type, N, H);
  layernorm_forward(hid(0), st.emb_xhat.data(), st.emb_rstd.data(), e, p.emb_gLN, p.emb_bLN, N, H, c.layer_norm_eps);
  dropout_forward(hid(0), hid(0), std::ptrdiff_t(NH), drop.embeddings());

  for (int l = 0; l < L; ++l) {
    const auto& lp = p.layers[std::size_t(l)];
    if (Mask::computes_grads && l >= std::max(st.lowest, 0) && st.lowest < L) {
      auto& cache = st.caches[std::size_t(l - std::max(st.lowest, 0))];
      encoder_layer_forward<Mask>(hid(l + 1), cache, hid(l), lp, offs, c, st.scratch, drop.layer(l));
    } else {
      encoder_layer_forward<no_grad>(hid(l + 1), st.caches.back(), hid(l), lp, offs, c, st.scratch, drop.layer(l));
    }
  }
  st.last_hidden = hid(L);

  // Pooler on the [CLS] rows.
  st.cls.resize(std::size_t(B) * H), st.pooled.resize(st.run_pooler ? std::size_t(B) * H : 0);
  for (int b = 0; b < B; ++b)
    std::copy_n(st.last_hidden + std::size_t(batch.offsets[std::size_t(b)]) * H, H, st.cls.data() + std::size_t(b) * H);
  if (!st.run_pooler) return;
  linear_forward(st.pooled.data(), st.cls.data(), p.pooler_W, p.pooler_b, B, H, H);
  for (auto& v : st.pooled) v = std::tanh(v);
}

/// Backward through the pooler: from dpooled (B, H), the gradient of the loss with respect to the
/// pooler output, to dlast (N, H), the gradient on the last hidden state (zero except each
/// sequence's [CLS] row). Accumulates the pooler's gradients that `mask` trains.
template <mask_policy Mask, class T>
void pooler_backward(T* dlast, bert_params<T>& g, encoder_state<T>& st, const bert_params<T>& p,
                     const token_batch& batch, const T* dpooled, const Mask& mask) {
  static_assert(Mask::computes_grads, "pooler_backward needs a gradient-computing mask");
  const int N = batch.tokens(), B = batch.size(), H = p.config.hidden_size;
  // pooled = tanh(cls W_p^T + b_p)
  auto& dpre = st.dpre;
  dpre.resize(std::size_t(B) * H);
  for (std::size_t i = 0; i < dpre.size(); ++i) dpre[i] = dpooled[i] * (T(1) - st.pooled[i] * st.pooled[i]);
  T* dpool_b = Mask::may_train(term::pooler_b) && mask.trains(term::pooler_b) ? g.pooler_b : nullptr;
  auto& dcls = st.dcls;
  dcls.assign(std::size_t(B) * H, T(0));
  detail::masked_linear_backward(mask, dcls.data(), g.pooler_W, dpool_b, dpre.data(), st.cls.data(), p.pooler_W, B, H, H);
  std::fill_n(dlast, std::size_t(N) * H, T(0));
  for (int b = 0; b < B; ++b)
    std::copy_n(dcls.data() + std::size_t(b) * H, H, dlast + std::size_t(batch.offsets[std::size_t(b)]) * H);
}

/// Backward from dlast (N, H), the gradient of the loss with respect to every token's last
/// hidden state: a token head's, or pooler_backward's. Accumulates into `g` the gradients of what
/// `mask` trains in the embeddings and layers (a bias-only g has no weight block). The pooler is
/// not touched: a sequence head adds it with pooler_backward (encoder_backward_pooled).
template <mask_policy Mask, class T>
void encoder_backward(bert_params<T>& g, encoder_state<T>& st, const bert_params<T>& p,
                      const token_batch& batch, const T* dlast, const Mask& mask,
                      const dropout_config& drop = {}) {
  static_assert(Mask::computes_grads, "encoder_backward needs a gradient-computing mask");
  constexpr bool W = Mask::weight_grads;
  const bert_config& c = p.config;
  const int N = batch.tokens(), L = c.num_hidden_layers, H = c.hidden_size;
  const std::size_t NH = std::size_t(N) * H;
  const std::span<const int> offs(batch.offsets);
  if (st.lowest >= L) return;  // nothing below the head trains
  auto &dh = st.dh, &dnext = st.dnext;
  dh.resize(NH), dnext.resize(NH);
  std::copy_n(dlast, NH, dh.data());

  const int stop = std::max(st.lowest, 0);
  for (int l = L - 1; l >= stop; --l) {
    const bool need_dinp = l > stop || st.lowest < 0;
    const T* inp = W ? st.hidden[std::size_t(l)].data() : nullptr;
    encoder_layer_backward<Mask>(need_dinp ? dnext.data() : nullptr, g.layers[std::size_t(l)], dh.data(),
                                 st.caches[std::size_t(l - stop)], inp, p.layers[std::size_t(l)], offs, c,
                                 mask, st.scratch, drop.layer(l));
    if (need_dinp) std::swap(dh, dnext);
  }
  if (st.lowest < 0) {
    dropout_backward(dh.data(), dh.data(), std::ptrdiff_t(NH), drop.embeddings());
    buffer<T> de(W ? NH : 0, T(0));
    layernorm_backward<W>(W ? de.data() : nullptr, g.emb_gLN, g.emb_bLN, dh.data(), st.emb_xhat.data(),
                          st.emb_rstd.data(), p.emb_gLN, N, H);
    if constexpr (W)
      embedding_backward(g.word, g.pos, g.type, de.data(), batch.ids.data(), batch.positions.data(),
                         batch.type_ids.data(), N, H, c.pad_token_id);
  }
}

/// Backward of a sequence task: pooler_backward from dpooled (B, H), then encoder_backward.
template <mask_policy Mask, class T>
void encoder_backward_pooled(bert_params<T>& g, encoder_state<T>& st, const bert_params<T>& p,
                             const token_batch& batch, const T* dpooled, const Mask& mask,
                             const dropout_config& drop = {}) {
  st.dlast.resize(std::size_t(batch.tokens()) * p.config.hidden_size);
  pooler_backward(st.dlast.data(), g, st, p, batch, dpooled, mask);
  encoder_backward(g, st, p, batch, st.dlast.data(), mask, drop);
}

}  // namespace bitfit
