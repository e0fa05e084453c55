#pragma once
/// @file embedding.hpp
/// BERT input embeddings: word + absolute position + token type (the LayerNorm after it is
/// ops/layernorm.hpp).

#include <cstddef>
#include <cstdint>

namespace bitfit {

/// out (N, H) = word[ids] + pos[positions] + type[type_ids]; tables (V, H), (P, H), (Tt, H).
/// Caches nothing: the backward needs only the ids, which the batch keeps.
template <class T>
void embedding_forward(T* out, const std::int32_t* ids, const std::int32_t* positions,
                       const std::int32_t* type_ids, const T* word, const T* pos, const T* type,
                       int N, int H) {
#pragma omp parallel for schedule(static) if (N > 256)
  for (int n = 0; n < N; ++n) {
    const T* w = word + std::ptrdiff_t(ids[n]) * H;
    const T* p = pos + std::ptrdiff_t(positions[n]) * H;
    const T* t = type + std::ptrdiff_t(type_ids[n]) * H;
    T* y = out + std::ptrdiff_t(n) * H;
    for (int h = 0; h < H; ++h) y[h] = w[h] + p[h] + t[h];
  }
}

/// Scatter-adds dout (N, H) into the three tables' gradients (full fine-tuning only: every
/// embedding table is a weight). Serial, so repeated ids always sum in the same order.
/// The word row `padding_idx` gets no gradient, as torch.nn.Embedding(padding_idx=...) in HF's
/// BertEmbeddings (pad_token_id); -1 disables this.
template <class T>
void embedding_backward(T* dword, T* dpos, T* dtype, const T* dout, const std::int32_t* ids,
                        const std::int32_t* positions, const std::int32_t* type_ids, int N, int H,
                        int padding_idx = -1) {
  for (int n = 0; n < N; ++n) {
    const T* dy = dout + std::ptrdiff_t(n) * H;
    T* w = ids[n] == padding_idx ? nullptr : dword + std::ptrdiff_t(ids[n]) * H;
    T* p = dpos + std::ptrdiff_t(positions[n]) * H;
    T* t = dtype + std::ptrdiff_t(type_ids[n]) * H;
    for (int h = 0; h < H; ++h) {
      if (w) w[h] += dy[h];
      p[h] += dy[h];
      t[h] += dy[h];
    }
  }
}

}  // namespace bitfit
