#pragma once
/// @file wordpiece.hpp
/// WordPiece: the vocabulary of a BERT model (vocab.txt) and the greedy longest-match-first
/// split of one word into vocabulary pieces, as Hugging Face `tokenizers` does it.

#include <bitfit/core/error.hpp>
#include <bitfit/text/basic_tokenizer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bitfit {

namespace detail {

/// Hash that lets an unordered_map<std::string, ...> be searched with a std::string_view.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

using token_map = std::unordered_map<std::string, int32_t, string_hash, std::equal_to<>>;

}  // namespace detail

/// A WordPiece vocabulary and tokenizer for single words.
///
/// Token ids are line indices of vocab.txt. If a token occurs twice, the later line wins (as in
/// both Hugging Face tokenizers); `size()` is still the number of lines, the size of the
/// model's embedding table.
class wordpiece {
 public:
  /// Builds the vocabulary from tokens in id order. `unk_token` must be one of them.
  explicit wordpiece(std::vector<std::string> tokens, std::string unk_token = "[UNK]",
                     int max_input_chars_per_word = 100, std::string continuing_prefix = "##")
      : tokens_(std::move(tokens)), prefix_(std::move(continuing_prefix)), max_chars_(max_input_chars_per_word) {
    check(!tokens_.empty(), "wordpiece: the vocabulary is empty");
    check(tokens_.size() <= std::size_t(INT32_MAX), "wordpiece: the vocabulary has more than 2^31 - 1 tokens");
    check(max_chars_ > 0, "wordpiece: max_input_chars_per_word must be positive");
    check(!prefix_.empty(), "wordpiece: the continuing-subword prefix is empty");
    words_.reserve(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const auto& t = tokens_[i];
      words_.insert_or_assign(t, int32_t(i));
      max_word_bytes_ = std::max(max_word_bytes_, t.size());
      // "##ing" continues a word with "ing"; keeping those under "ing" saves building "##" +
      // piece for every lookup.
      if (t.size() > prefix_.size() && t.starts_with(prefix_)) {
        continuations_.insert_or_assign(t.substr(prefix_.size()), int32_t(i));
        max_continuation_bytes_ = std::max(max_continuation_bytes_, t.size() - prefix_.size());
      }
    }
    const auto unk = words_.find(unk_token);
    check(unk != words_.end(), "wordpiece: the unknown token \"" + unk_token + "\" is not in the vocabulary");
    unk_id_ = unk->second;
  }

  /// Reads vocab.txt: one token per line (LF or CRLF), id = line index starting at 0.
  static wordpiece from_file(const std::filesystem::path& path, std::string unk_token = "[UNK]") {
    std::ifstream in(path, std::ios::binary);
    check(bool(in), "cannot open vocabulary file " + path.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    check(!in.bad(), "cannot read vocabulary file " + path.string());
    const std::string text = std::move(ss).str();
    std::vector<std::string> tokens;
    std::size_t begin = 0;
    while (begin < text.size()) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + begin, end - begin);
      if (line.ends_with('\r')) line.remove_suffix(1);
      tokens.emplace_back(line);
      begin = end + 1;
    }
    check(!tokens.empty(), "vocabulary file " + path.string() + " is empty");
    try {
      return wordpiece(std::move(tokens), std::move(unk_token));
    } catch (const error& e) {
      throw error("vocabulary file " + path.string() + ": " + e.what());
    }
  }

  /// Number of ids (lines of vocab.txt).
  int32_t size() const noexcept { return int32_t(tokens_.size()); }
  /// The id of `token`, or -1 if it is not in the vocabulary.
  int32_t id_of(std::string_view token) const {
    const auto it = words_.find(token);
    return it == words_.end() ? -1 : it->second;
  }
  /// The token with id `id` (0 <= id < size()).
  const std::string& token(int32_t id) const {
    check(id >= 0 && id < size(), "wordpiece: token id " + std::to_string(id) + " is out of range");
    return tokens_[std::size_t(id)];
  }
  int32_t unk_id() const noexcept { return unk_id_; }
  int max_input_chars_per_word() const noexcept { return max_chars_; }

  /// Appends the ids of the pieces of `word` (UTF-8, one basic-tokenizer word) to `ids`:
  /// at each position the longest vocabulary entry that matches ("##"-prefixed after the
  /// first piece). A word with more than max_input_chars_per_word code points, or with a
  /// position where nothing matches, becomes the single unknown token.
  void tokenize_word(std::string_view word, std::vector<int32_t>& ids) const {
    if (word.empty()) return;
    if (detail::utf8_length(word) > std::size_t(max_chars_)) {
      ids.push_back(unk_id_);
      return;
    }
    const std::size_t first = ids.size();
    std::size_t start = 0;
    while (start < word.size()) {
      const auto& map = start == 0 ? words_ : continuations_;
      const std::size_t longest = start == 0 ? max_word_bytes_ : max_continuation_bytes_;
      // No entry is longer than `longest` bytes, so start there (on a character boundary).
      std::size_t end = std::min(word.size(), start + longest);
      while (end > start && end < word.size() && is_continuation_byte(word[end])) --end;
      int32_t found = -1;
      while (end > start) {
        const auto it = map.find(word.substr(start, end - start));
        if (it != map.end()) {
          found = it->second;
          break;
        }
        do --end;
        while (end > start && is_continuation_byte(word[end]));
      }
      if (found < 0) {
        ids.resize(first);
        ids.push_back(unk_id_);
        return;
      }
      ids.push_back(found);
      start = end;
    }
  }

 private:
  static bool is_continuation_byte(char c) noexcept { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

  std::vector<std::string> tokens_;
  detail::token_map words_;          // every token
  detail::token_map continuations_;  // "##xyz" stored as "xyz"
  std::string prefix_;
  std::size_t max_word_bytes_ = 0, max_continuation_bytes_ = 0;
  int max_chars_;
  int32_t unk_id_ = -1;
};

}  // namespace bitfit
