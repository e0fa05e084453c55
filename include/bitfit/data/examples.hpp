#pragma once
/// @file examples.hpp
/// A tokenized training or evaluation example: what the trainer consumes.

#include <cstdint>
#include <vector>

namespace bitfit {

/// One tokenized example.
struct encoded_example {
  std::vector<std::int32_t> ids, types;
  int label = -1;
  float score = 0.0f;
  /// Token tasks: one label per id (ignore_label, -100, where not scored: [CLS], [SEP], a word's
  /// later sub-tokens); empty for sequence tasks.
  std::vector<std::int32_t> token_labels = {};
};

}  // namespace bitfit
