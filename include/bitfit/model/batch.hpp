#pragma once
/// @file batch.hpp
/// A packed batch of variable-length sequences: B sequences back to back, no padding.
/// Packing is what "dynamic padding" aims at, taken to the end: no work is spent on pad tokens.

#include <bitfit/core/error.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bitfit {

struct token_batch {
  std::vector<std::int32_t> ids;        // (N)
  std::vector<std::int32_t> type_ids;   // (N)
  std::vector<std::int32_t> positions;  // (N) 0..T_b-1 within each sequence
  std::vector<int> offsets{0};          // (B + 1): sequence b is rows [offsets[b], offsets[b+1])

  int size() const { return int(offsets.size()) - 1; }  ///< B
  int tokens() const { return offsets.back(); }         ///< N
  int length(int b) const { return offsets[std::size_t(b) + 1] - offsets[std::size_t(b)]; }
  int max_length() const {
    int m = 0;
    for (int b = 0; b < size(); ++b) m = std::max(m, length(b));
    return m;
  }

  /// Appends one sequence (ids with their token types, same length, at least one token).
  void add(std::span<const std::int32_t> seq_ids, std::span<const std::int32_t> seq_types) {
    check(seq_ids.size() == seq_types.size(), "token_batch: ids and token types differ in length");
    check(!seq_ids.empty(), "token_batch: empty sequence");
    for (std::size_t t = 0; t < seq_ids.size(); ++t) {
      ids.push_back(seq_ids[t]);
      type_ids.push_back(seq_types[t]);
      positions.push_back(std::int32_t(t));
    }
    offsets.push_back(offsets.back() + int(seq_ids.size()));
  }

  /// Throws when an id, type or position is outside the model's tables.
  void validate(int vocab_size, int type_vocab_size, int max_positions) const {
    for (std::size_t n = 0; n < ids.size(); ++n) {
      check(ids[n] >= 0 && ids[n] < vocab_size,
            "token id " + std::to_string(ids[n]) + " outside the vocabulary of " + std::to_string(vocab_size));
      check(type_ids[n] >= 0 && type_ids[n] < type_vocab_size,
            "token type " + std::to_string(type_ids[n]) + " outside [0, " + std::to_string(type_vocab_size) + ")");
      check(positions[n] < max_positions, "sequence longer than max_position_embeddings (" +
                                              std::to_string(max_positions) + ")");
    }
  }
};

}  // namespace bitfit
