// Word labels on wordpiece tokens: the first token of each word carries its label, the rest and
// [CLS]/[SEP] carry -100, as run_ner.py with label_all_tokens=False; words without tokens and
// words cut away simply have no slot; inconsistent word ids are refused.
#include "test_support.hpp"

#include <bitfit/data/token_labels.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace bitfit;
using bitfit::test::error_of;
using ids = std::vector<int32_t>;

TEST_CASE("token labels: the first sub-token of each word carries its label") {
  constexpr int32_t x = ignore_label;  // what cross_entropy skips
  static_assert(x == -100);
  // [CLS] w0 w1 w1 w1 w2 [SEP]
  CHECK(first_subtoken_labels(ids{-1, 0, 1, 1, 1, 2, -1}, ids{7, 3, 5}) == ids{x, 7, 3, x, x, 5, x});
  // Word 1 has no token (e.g. a zero-width space): it has no slot; the others still line up.
  CHECK(first_subtoken_labels(ids{-1, 0, 2, 2, -1}, ids{4, 9, 6}) == ids{x, 4, 6, x, x});
  // Words 2 and 3 truncated away: their labels are simply not used.
  CHECK(first_subtoken_labels(ids{-1, 0, 1, -1}, ids{1, 2, 3, 4}) == ids{x, 1, 2, x});
  // Two words with the same label stay two labels.
  CHECK(first_subtoken_labels(ids{-1, 0, 1, -1}, ids{0, 0}) == ids{x, 0, 0, x});
  CHECK(first_subtoken_labels(ids{-1, -1}, ids{}) == ids{x, x});
  CHECK(first_subtoken_labels(ids{}, ids{}).empty());
}

TEST_CASE("token labels: a word id without a label is refused") {
  CHECK(error_of([] { first_subtoken_labels(ids{-1, 0, 2, -1}, ids{1, 2}); }) ==
        "first_subtoken_labels: token 2 has word id 2 but there are 2 word labels");
  CHECK(error_of([] { first_subtoken_labels(ids{-2}, ids{1}); }).find("token 0 has word id -2") != std::string::npos);
}

TEST_CASE("token labels: a word's prediction is its first token's (the inverse of first_subtoken_labels)") {
  // [CLS] w0 w1 w1 w1 w2 [SEP]: the later pieces of w1 and the specials are not read.
  CHECK(word_predictions(ids{-1, 0, 1, 1, 1, 2, -1}, std::vector<int>{9, 7, 3, 8, 8, 5, 9}, 3) == ids{7, 3, 5});
  // Word 1 without a token and word 3 cut away: -1, no prediction.
  CHECK(word_predictions(ids{-1, 0, 2, 2, -1}, std::vector<int>{0, 4, 6, 1, 0}, 4) == ids{4, -1, 6, -1});
  CHECK(word_predictions(ids{}, std::vector<int>{}, 0).empty());
  // Round trip: labels placed on first sub-tokens read back as the words' labels.
  const ids word_ids{-1, 0, 0, 1, 2, 2, -1};
  const ids labels = first_subtoken_labels(word_ids, ids{3, 1, 2});
  CHECK(word_predictions(word_ids, std::vector<int>(labels.begin(), labels.end()), 3) == ids{3, 1, 2});
}

TEST_CASE("token labels: predictions that do not line up with the word ids are refused") {
  CHECK(error_of([] { word_predictions(ids{-1, 0, -1}, std::vector<int>{0, 1}, 1); }) ==
        "word_predictions: 3 word ids but 2 token predictions");
  CHECK(error_of([] { word_predictions(ids{-1, 1, -1}, std::vector<int>{0, 1, 0}, 1); }) ==
        "word_predictions: token 1 has word id 1 but there are 1 words");
}
