#pragma once
/// @file pooling.hpp
/// Sentence vectors from an encoder pass: [CLS] hidden state, mean over tokens (the
/// sentence-transformers pooling of all-MiniLM-L6-v2), or the pooler output.

#include <bitfit/core/error.hpp>
#include <bitfit/model/batch.hpp>
#include <bitfit/model/encoder.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace bitfit {

enum class pooling { cls, mean, pooler };

/// Parses "cls", "mean" or "pooler".
inline pooling parse_pooling(std::string_view s) {
  if (s == "cls") return pooling::cls;
  if (s == "mean") return pooling::mean;
  if (s == "pooler") return pooling::pooler;
  throw error("unknown pooling '" + std::string(s) + "' (expected cls, mean or pooler)");
}

/// (B, H) sentence vectors of the last forward pass held in `st`.
template <class T>
std::vector<T> pool(const encoder_state<T>& st, const token_batch& batch, int H, pooling how) {
  if (how == pooling::cls) return {st.cls.begin(), st.cls.end()};
  if (how == pooling::pooler) {
    check(st.run_pooler, "pool: the encoder ran without its pooler (encoder_state::run_pooler)");
    return {st.pooled.begin(), st.pooled.end()};
  }
  const int B = batch.size();
  std::vector<T> out(std::size_t(B) * H, T(0));
  for (int b = 0; b < B; ++b) {
    T* o = out.data() + std::size_t(b) * H;
    for (int n = batch.offsets[std::size_t(b)]; n < batch.offsets[std::size_t(b) + 1]; ++n)
      for (int h = 0; h < H; ++h) o[h] += st.last_hidden[std::size_t(n) * H + h];
    for (int h = 0; h < H; ++h) o[h] /= T(batch.length(b));
  }
  return out;
}

}  // namespace bitfit
