#pragma once
/// @file token_labels.hpp
/// Word labels moved onto wordpiece tokens for token classification (POS tagging, NER), with the
/// convention of Hugging Face's run_ner.py (label_all_tokens=False): the first token of each word
/// carries the word's label; its other tokens, [CLS] and [SEP] carry -100 (`ignore_label`), which
/// the loss skips. Predictions are read back the same way: a word's prediction is its first token's.
/// A word without tokens (see bert_tokenizer::encode_words) has no token to carry its label, so it
/// gets no prediction; that is the one case where the words scored and the words in the data differ.

#include <bitfit/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bitfit {

/// Labels equal to this are not scored by the loss (train/head.hpp's cross_entropy) nor by
/// token_accuracy: [CLS], [SEP] and the later sub-tokens of a word (HF's -100, torch's
/// default ignore_index).
inline constexpr int ignore_label = -100;

/// Per token: `word_labels[w]` at the first token of word w, -100 (`ignore_label`) elsewhere.
/// `word_ids` is per token the index of its word or -1 (bert_tokenizer::encode_words); a word's
/// tokens are consecutive. Throws if a word id is below -1 or has no label.
inline std::vector<int32_t> first_subtoken_labels(std::span<const int32_t> word_ids, std::span<const int32_t> word_labels) {
  std::vector<int32_t> out(word_ids.size(), ignore_label);
  int32_t previous = -1;
  for (std::size_t t = 0; t < word_ids.size(); ++t) {
    const int32_t w = word_ids[t];
    if (w < -1 || (w >= 0 && std::size_t(w) >= word_labels.size()))
      throw error("first_subtoken_labels: token " + std::to_string(t) + " has word id " + std::to_string(w) + " but there are " +
                  std::to_string(word_labels.size()) + " word labels");
    if (w >= 0 && w != previous) out[t] = word_labels[std::size_t(w)];
    previous = w;
  }
  return out;
}

/// The inverse of first_subtoken_labels for predictions: per word, the class of its first token
/// in `token_classes` (one per token, aligned with `word_ids`), or -1 for a word with no token
/// (cut at max_length, or a word that gives no token). Throws if the two lengths differ or a
/// word id is below -1 or not below `words`.
inline std::vector<int32_t> word_predictions(std::span<const int32_t> word_ids, std::span<const int> token_classes,
                                             std::size_t words) {
  if (word_ids.size() != token_classes.size())
    throw error("word_predictions: " + std::to_string(word_ids.size()) + " word ids but " +
                std::to_string(token_classes.size()) + " token predictions");
  std::vector<int32_t> out(words, -1);
  int32_t previous = -1;
  for (std::size_t t = 0; t < word_ids.size(); ++t) {
    const int32_t w = word_ids[t];
    if (w < -1 || (w >= 0 && std::size_t(w) >= words))
      throw error("word_predictions: token " + std::to_string(t) + " has word id " + std::to_string(w) + " but there are " +
                  std::to_string(words) + " words");
    if (w >= 0 && w != previous) out[std::size_t(w)] = int32_t(token_classes[t]);
    previous = w;
  }
  return out;
}

}  // namespace bitfit
