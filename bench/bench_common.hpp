#pragma once
// Shared set-up for the benchmarks: model shapes, random parameters and batches, peak RSS.

#include <bitfit/model/encoder.hpp>

#include <sys/resource.h>

#include <cstdint>
#include <string>

namespace bitfit::bench {

/// The default model's shape (all-MiniLM-L6-v2) or BERT-base.
inline bert_config shape(const std::string& name) {
  bert_config c;
  if (name == "minilm") {
    c.hidden_size = 384, c.num_hidden_layers = 6, c.num_attention_heads = 12, c.intermediate_size = 1536;
  }  // else BERT-base: the defaults (L=12, H=768, A=12, I=3072)
  return c;
}

/// Random parameters of a given shape (timing depends on shape only), LayerNorm gains at 1.
inline bert_params<float> random_params(const bert_config& c, std::uint64_t seed = 1) {
  bert_params<float> p(c, true);
  for (std::size_t i = 0; i < p.data.size(); ++i)
    p.data[i] = float(double(detail::mix64(seed ^ i) >> 11) * 0x1.0p-53 - 0.5) * 0.04f;
  for (auto& l : p.layers)
    for (int h = 0; h < c.hidden_size; ++h) l.gLN1[h] = l.gLN2[h] = 1.0f;
  for (int h = 0; h < c.hidden_size; ++h) p.emb_gLN[h] = 1.0f;
  return p;
}

/// B sequences of T random token ids (full length: the peer is timed without padding too).
inline token_batch random_batch(int B, int T, int vocab, std::uint64_t seed = 7) {
  token_batch b;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(T)), types(static_cast<std::size_t>(T), 0);
  for (int s = 0; s < B; ++s) {
    for (int t = 0; t < T; ++t) ids[std::size_t(t)] = 1000 + std::int32_t(detail::mix64(seed ^ std::uint64_t(s * T + t)) % std::uint64_t(vocab - 1000));
    b.add(ids, types);
  }
  return b;
}

/// Peak resident set size of this process so far, in MiB.
inline double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

}  // namespace bitfit::bench
