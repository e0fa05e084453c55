#pragma once
// The tiny model of the encoder and head tests: random parameters of tiny_config() (LayerNorm
// gains near 1) and a packed batch of three sequences of different lengths and token types.
#include "grad_check.hpp"
#include "test_support.hpp"

#include <bitfit/model/batch.hpp>
#include <bitfit/model/params.hpp>

#include <vector>

namespace bitfit::test {

inline token_batch tiny_batch() {
  token_batch b;
  // Lengths 5, 1, 7; ids repeat within and across sequences; both token types occur.
  b.add(std::vector<std::int32_t>{2, 17, 5, 17, 3}, std::vector<std::int32_t>{0, 0, 0, 1, 1});
  b.add(std::vector<std::int32_t>{2}, std::vector<std::int32_t>{0});
  b.add(std::vector<std::int32_t>{2, 40, 41, 3, 9, 5, 3}, std::vector<std::int32_t>{0, 0, 0, 0, 1, 1, 1});
  return b;
}

/// Every parameter of `p` uniform in [-0.5, 0.5), embeddings in [-1, 1), LayerNorm gains in [0.5, 1.5).
inline void randomize(bert_params<double>& p, rng& r) {
  const auto& cfg = p.config;
  const std::size_t H = std::size_t(cfg.hidden_size);
  r.fill(p.data, -0.5, 0.5);
  r.fill({p.word, std::size_t(cfg.vocab_size) * H});
  r.fill({p.pos, std::size_t(cfg.max_position_embeddings) * H});
  r.fill({p.type, std::size_t(cfg.type_vocab_size) * H});
  r.fill({p.emb_gLN, H}, 0.5, 1.5);
  for (auto& l : p.layers) {
    r.fill({l.gLN1, H}, 0.5, 1.5);
    r.fill({l.gLN2, H}, 0.5, 1.5);
  }
}

}  // namespace bitfit::test
