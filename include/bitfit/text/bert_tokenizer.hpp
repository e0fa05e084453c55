#pragma once
/// @file bert_tokenizer.hpp
/// The BERT tokenizer: basic tokenization + WordPiece + [CLS]/[SEP] framing and truncation,
/// giving the same token ids as Hugging Face `BertTokenizerFast` (transformers 4.40,
/// tokenizers 0.19) called with `truncation="longest_first", max_length=...`.
///
/// Special tokens written in the text ("[MASK]", "[SEP]", ...; exact, case-sensitive) become
/// their ids, as in Hugging Face. Any byte string is valid input: invalid UTF-8 is handled as
/// described in basic_tokenizer.hpp (each ill-formed sequence is dropped).
///
/// Cost on hostile input: every path is one left-to-right pass, linear in the bytes read
/// (O(k log k) for a run of k combining marks). `encode` stops reading once it has the ids it
/// keeps; `encode_pair` stops each text after `max_length - 2` ids, except when both texts are
/// longer than that and the budget is odd: then both are counted, in step, until the shorter
/// one ends (which one is longer decides who gets the odd place). `token_ids` and `tokenize`
/// read everything. There is no cap on the input size: callers bound what they accept.
///
/// Pre-split words (`encode_words`, for token classification) are encoded as
/// `BertTokenizerFast(words, is_split_into_words=True, truncation=True, max_length=...)`, and
/// `word_ids` is its `.word_ids()` (None as -1), with one deliberate difference: HF cuts at
/// `max_length` even inside a word, keeping the word's first pieces; `encode_words` drops that
/// word (and all after it) whole and counts it in `truncated_words`, so that no word is tagged
/// from a part of it. Otherwise the ids are HF's: each word is its own text (special token
/// strings, basic tokenization, WordPiece), and a word that gives no token at all ("", only
/// spaces or control characters) gets none, as in HF, and so no prediction slot.
///
/// Where the slow Python `BertTokenizer` gives other ids, this follows the fast one:
///  - Pair truncation: when both texts must be cut and an odd number of places is left for them,
///    the fast tokenizer gives the extra place to the longer text (the second on a tie), the
///    slow one to the first.
///  - An empty second text: `BertTokenizerFast(a, "")` encodes `a` alone ([CLS] a [SEP]); the
///    slow tokenizer appends a second [SEP].
///  - Character classes (see basic_tokenizer.hpp): the slow tokenizer uses Python's current
///    Unicode tables, drops unassigned code points, spaces U+2B820..U+2B91F as CJK and applies
///    NFC first; it also recognises special tokens after cleaning ("[MA\u200bSK]" is [MASK]).

#include <bitfit/core/error.hpp>
#include <bitfit/core/json.hpp>
#include <bitfit/text/basic_tokenizer.hpp>
#include <bitfit/text/wordpiece.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitfit {

/// Token ids of one model input. The attention mask is all ones (nothing is padded).
struct encoding {
  std::vector<int32_t> input_ids;       ///< [CLS] a [SEP] (b [SEP])
  std::vector<int32_t> token_type_ids;  ///< 0 for [CLS] a [SEP], 1 for b [SEP]
};

/// Token ids of pre-split words, with the word each token came from (bert_tokenizer::encode_words).
struct word_encoding {
  std::vector<int32_t> input_ids;       ///< [CLS] tokens of words[0], words[1], ... [SEP]
  std::vector<int32_t> token_type_ids;  ///< all 0
  std::vector<int32_t> word_ids;        ///< per token: the index of its word; -1 for [CLS] and [SEP]
  std::size_t words_kept = 0;           ///< words[0, words_kept) are in the ids, each whole
  std::size_t truncated_words = 0;      ///< the others (words.size() - words_kept), cut at max_length
};

/// The special token strings (`tokenizer_config.json`: unk_token, sep_token, ...).
struct special_tokens {
  std::string unk = "[UNK]", sep = "[SEP]", pad = "[PAD]", cls = "[CLS]", mask = "[MASK]";
};

namespace detail {

/// Lengths the two sequences of a pair keep under `tokenizers`' "longest_first" strategy when
/// together they may have `budget` tokens: the shorter one is kept whole if the longer one can
/// still have as many tokens; otherwise both are cut to half the budget, and the longer one (the
/// second one on a tie) gets the odd place. Same as `truncate_encodings` in tokenizers 0.19.
inline std::pair<std::size_t, std::size_t> longest_first_lengths(std::size_t n_a, std::size_t n_b,
                                                                 std::size_t budget) noexcept {
  if (n_a + n_b <= budget) return {n_a, n_b};
  if (budget == 0) return {0, 0};
  const bool swap = n_a > n_b;
  std::size_t n1 = swap ? n_b : n_a;  // the shorter
  std::size_t n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = budget / 2;
    n2 = n1 + budget % 2;
  }
  return swap ? std::pair{n2, n1} : std::pair{n1, n2};
}

/// Reads a token string from tokenizer_config.json: "[UNK]" or {"content": "[UNK]", ...}.
inline void read_special_token(const nlohmann::json& config, const char* key, std::string& out,
                               const std::string& file) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (it->is_string()) {
    out = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out = (*it)["content"].get<std::string>();
  } else {
    throw error(file + ": \"" + key + "\" must be a string or an object with a string \"content\"");
  }
}

inline void read_bool(const nlohmann::json& config, const char* key, bool& out, const std::string& file) {
  const auto it = config.find(key);
  if (it == config.end()) return;
  check(it->is_boolean(), file + ": \"" + key + "\" must be true or false");
  out = it->get<bool>();
}

}  // namespace detail

/// BERT tokenizer: text to token ids.
class bert_tokenizer {
 public:
  /// Tokenizer from a vocabulary, basic-tokenization switches and special token strings
  /// (each must be in the vocabulary).
  explicit bert_tokenizer(wordpiece vocab, basic_tokenizer_options options = {}, special_tokens specials = {})
      : vocab_(std::move(vocab)), basic_(options), specials_(std::move(specials)) {
    const auto id = [&](const std::string& token, const char* what) {
      const int32_t i = vocab_.id_of(token);
      check(i >= 0, std::string("bert_tokenizer: the ") + what + " token \"" + token + "\" is not in the vocabulary");
      return i;
    };
    unk_id_ = id(specials_.unk, "unknown");
    sep_id_ = id(specials_.sep, "separator");
    pad_id_ = id(specials_.pad, "padding");
    cls_id_ = id(specials_.cls, "classifier");
    mask_id_ = id(specials_.mask, "mask");
    check(unk_id_ == vocab_.unk_id(), "bert_tokenizer: the vocabulary's unknown token is not \"" + specials_.unk + "\"");
    split_tokens_ = {{{specials_.unk, unk_id_}, {specials_.sep, sep_id_}, {specials_.pad, pad_id_},
                      {specials_.cls, cls_id_}, {specials_.mask, mask_id_}}};
    for (const auto& [token, _] : split_tokens_) {
      check(!token.empty(), "bert_tokenizer: a special token is empty");
      starts_special_[static_cast<unsigned char>(token[0])] = true;
    }
  }

  /// Loads `dir`/vocab.txt and, if present, `dir`/tokenizer_config.json (do_lower_case,
  /// strip_accents, tokenize_chinese_chars, *_token; absent keys take the Hugging Face defaults).
  static bert_tokenizer from_dir(const std::filesystem::path& dir) {
    basic_tokenizer_options options;
    special_tokens specials;
    const auto config_path = dir / "tokenizer_config.json";
    if (std::filesystem::exists(config_path)) {
      const std::string file = config_path.string();
      const nlohmann::json config = parse_json_file(config_path);
      check(config.is_object(), file + ": expected a JSON object");
      detail::read_bool(config, "do_lower_case", options.lower_case, file);
      detail::read_bool(config, "tokenize_chinese_chars", options.tokenize_chinese_chars, file);
      if (const auto it = config.find("strip_accents"); it != config.end() && !it->is_null()) {
        check(it->is_boolean(), file + ": \"strip_accents\" must be null, true or false");
        options.strip_accents = it->get<bool>();
      }
      detail::read_special_token(config, "unk_token", specials.unk, file);
      detail::read_special_token(config, "sep_token", specials.sep, file);
      detail::read_special_token(config, "pad_token", specials.pad, file);
      detail::read_special_token(config, "cls_token", specials.cls, file);
      detail::read_special_token(config, "mask_token", specials.mask, file);
    }
    const auto vocab_path = dir / "vocab.txt";
    auto vocab = wordpiece::from_file(vocab_path, specials.unk);
    try {
      return bert_tokenizer(std::move(vocab), options, std::move(specials));
    } catch (const error& e) {
      throw error(vocab_path.string() + ": " + e.what());
    }
  }

  /// WordPiece tokens of `text` (no [CLS]/[SEP]), like Hugging Face's `tokenize`.
  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> out;
    for (const int32_t id : token_ids(text)) out.push_back(vocab_.token(id));
    return out;
  }

  /// Token ids of `text` without [CLS]/[SEP] and without truncation.
  std::vector<int32_t> token_ids(std::string_view text) const {
    std::vector<int32_t> ids;
    append_ids(text, ids);
    return ids;
  }

  /// [CLS] text [SEP], with the text's tokens cut so that at most `max_length` ids remain.
  /// Throws if `max_length` < 2.
  encoding encode(std::string_view text, int max_length) const {
    check(max_length >= 2, "bert_tokenizer::encode: max_length " + std::to_string(max_length) +
                               " leaves no room for [CLS] and [SEP] (needs at least 2)");
    std::vector<int32_t> ids;
    ids.reserve(std::size_t(max_length));
    ids.push_back(cls_id_);
    append_ids(text, ids, std::size_t(max_length) - 1);  // reads only as far as the ids kept
    ids.resize(std::min(ids.size(), std::size_t(max_length) - 1));
    ids.push_back(sep_id_);
    return {ids, std::vector<int32_t>(ids.size(), 0)};
  }

  /// [CLS] a [SEP] b [SEP], at most `max_length` ids, cut with the "longest_first" strategy
  /// of `tokenizers` (see detail::longest_first_lengths). An empty `b` gives encode(a), as
  /// BertTokenizerFast does (a `b` of only spaces is still a pair). Throws if `max_length` < 3.
  encoding encode_pair(std::string_view a, std::string_view b, int max_length) const {
    check(max_length >= 3, "bert_tokenizer::encode_pair: max_length " + std::to_string(max_length) +
                               " leaves no room for [CLS] and two [SEP] (needs at least 3)");
    if (b.empty()) return encode(a, max_length);
    std::vector<int32_t> ids_a, ids_b;
    const auto [n_a, n_b] = longest_first_prefixes(a, b, std::size_t(max_length) - 3, ids_a, ids_b);
    encoding out;
    out.input_ids.reserve(n_a + n_b + 3);
    out.input_ids.push_back(cls_id_);
    out.input_ids.insert(out.input_ids.end(), ids_a.begin(), ids_a.begin() + std::ptrdiff_t(n_a));
    out.input_ids.push_back(sep_id_);
    out.input_ids.insert(out.input_ids.end(), ids_b.begin(), ids_b.begin() + std::ptrdiff_t(n_b));
    out.input_ids.push_back(sep_id_);
    out.token_type_ids.assign(out.input_ids.size(), 1);
    std::fill_n(out.token_type_ids.begin(), n_a + 2, 0);
    return out;
  }

  /// [CLS] words [SEP] with the index of each token's word in `word_ids`, as HF's
  /// `BertTokenizerFast(words, is_split_into_words=True, truncation=True, max_length=...)`
  /// except at the cut: the longest prefix of whole words that fits in `max_length` ids is kept,
  /// the rest dropped and counted (see the file comment). Each word is tokenized as its own text;
  /// a word without tokens is kept and has no token. Reads the words only up to the first one that
  /// does not fit, and that one only as far as needed to know it. Throws if `max_length` < 2 or
  /// there are 2^31 - 1 words or more (their indices would not fit `word_ids`).
  word_encoding encode_words(std::span<const std::string> words, int max_length) const {
    // Called once per sentence: no message is built unless it is thrown.
    if (max_length < 2)
      throw error("bert_tokenizer::encode_words: max_length " + std::to_string(max_length) +
                  " leaves no room for [CLS] and [SEP] (needs at least 2)");
    if (words.size() >= std::size_t(std::numeric_limits<int32_t>::max()))
      throw error("bert_tokenizer::encode_words: " + std::to_string(words.size()) + " words, more than word_ids can index");
    const std::size_t budget = std::size_t(max_length) - 2;
    word_encoding out;
    out.input_ids.push_back(cls_id_);
    out.word_ids.push_back(-1);
    std::vector<int32_t> word;  // the ids of one word
    for (; out.words_kept < words.size(); ++out.words_kept) {
      const std::size_t room = budget - (out.input_ids.size() - 1);
      word.clear();
      append_ids(words[out.words_kept], word, room + 1);  // stops once the word cannot fit
      if (word.size() > room) break;
      out.input_ids.insert(out.input_ids.end(), word.begin(), word.end());
      out.word_ids.insert(out.word_ids.end(), word.size(), int32_t(out.words_kept));
    }
    out.truncated_words = words.size() - out.words_kept;
    out.input_ids.push_back(sep_id_);
    out.word_ids.push_back(-1);
    out.token_type_ids.assign(out.input_ids.size(), 0);
    return out;
  }

  /// The id of a vocabulary token, or -1 if it is not in the vocabulary.
  int32_t token_to_id(std::string_view token) const { return vocab_.id_of(token); }
  int32_t cls_id() const noexcept { return cls_id_; }
  int32_t sep_id() const noexcept { return sep_id_; }
  int32_t pad_id() const noexcept { return pad_id_; }
  int32_t unk_id() const noexcept { return unk_id_; }
  int32_t mask_id() const noexcept { return mask_id_; }
  /// Number of token ids (lines of vocab.txt).
  int32_t vocab_size() const noexcept { return vocab_.size(); }
  const wordpiece& vocabulary() const noexcept { return vocab_; }
  const basic_tokenizer& basic() const noexcept { return basic_; }
  const special_tokens& specials() const noexcept { return specials_; }

 private:
  /// Appends the ids of `text`: special token strings are matched first (leftmost, longest),
  /// the text between them goes through basic tokenization and WordPiece. Stops after the piece
  /// of text (see next_piece) that brings `ids` to `stop_at` ids or more: the ids appended are
  /// then exactly the first ones of the whole text's. Returns false if it stopped (possibly at
  /// the end of `text`), true if it read all of `text`. Linear in the part of `text` it reads.
  bool append_ids(std::string_view text, std::vector<int32_t>& ids,
                  std::size_t stop_at = std::numeric_limits<std::size_t>::max()) const {
    const auto add_words = [&](std::string_view part) {
      return basic_.for_each_word(part, [&](std::string_view word) {
        vocab_.tokenize_word(word, ids);
        return ids.size() < stop_at;
      });
    };
    std::size_t pos = 0;
    while (ids.size() < stop_at) {
      const piece next = next_piece(text, pos);
      if (!add_words(text.substr(pos, next.end - pos))) return false;
      if (next.end == text.size()) return true;
      if (next.special_size > 0) ids.push_back(next.special_id);
      pos = next.end + next.special_size;
    }
    return pos == text.size();
  }

  /// Text from a position to `end`, then the special token (if `special_size` > 0) at `end`.
  struct piece {
    std::size_t end, special_size;
    int32_t special_id;
  };

  /// The text from `pos` to the leftmost special token string (the longest one among those that
  /// start there), or to the end of `text`, or, once `piece_bytes` bytes are read, to just after
  /// an ASCII space or punctuation byte: no word, UTF-8 sequence or run of combining marks goes
  /// across such a byte, so the basic tokenizer gives the same words for the two sides apart.
  /// Reads `text` once from `pos` to the end of the piece.
  piece next_piece(std::string_view text, std::size_t pos) const {
    constexpr std::size_t piece_bytes = 4096;
    for (std::size_t at = pos; at < text.size(); ++at) {
      const auto byte = static_cast<unsigned char>(text[at]);
      if (starts_special_[byte]) {
        piece best{at, 0, -1};
        const std::string_view rest = text.substr(at);
        for (const auto& [token, id] : split_tokens_)
          if (token.size() > best.special_size && rest.starts_with(token)) best = {at, token.size(), id};
        if (best.special_size > 0) return best;
      }
      if (at - pos >= piece_bytes && byte < 0x80 && (byte == ' ' || detail::is_bert_punctuation(byte)))
        return {at + 1, 0, -1};
    }
    return {text.size(), 0, -1};
  }

  /// Tokenizes `a` and `b` into `ids_a` and `ids_b` just far enough to know how many ids of each
  /// "longest_first" keeps within `budget`, and returns those numbers; the ids kept are the
  /// first ones of `ids_a` and `ids_b`. Neither text can keep more than `budget` ids, and
  /// detail::longest_first_lengths depends on a text's length beyond `budget` only to decide
  /// which text is the longer when both are cut to half of an odd budget (the longer one gets
  /// the odd place, the second on a tie). Only then are the two texts counted further, piece by
  /// piece (next_piece), the one behind first, until the shorter one ends: the work is about
  /// twice the shorter text's, whatever the longer one's size.
  std::pair<std::size_t, std::size_t> longest_first_prefixes(std::string_view a, std::string_view b,
                                                             std::size_t budget, std::vector<int32_t>& ids_a,
                                                             std::vector<int32_t>& ids_b) const {
    // A text read to its end (`all_`) has exactly `n_` ids; one stopped early has at least `n_`
    // > budget, which longest_first_lengths treats alike as long as the longer one is known.
    bool all_a = append_ids(a, ids_a, budget + 1), all_b = append_ids(b, ids_b, budget + 1);
    std::size_t n_a = ids_a.size(), n_b = ids_b.size();
    const auto longer_known = [&] {
      return (all_a && all_b) || budget % 2 == 0 || (all_a && n_b > n_a) || (all_b && n_a > n_b);
    };
    if (longer_known()) return detail::longest_first_lengths(n_a, n_b, budget);
    // Both have more than `budget` ids: count both again from the start, in step.
    std::size_t pos_a = 0, pos_b = 0;
    n_a = n_b = 0;
    all_a = a.empty();
    all_b = b.empty();
    std::vector<int32_t> scratch;
    while (!longer_known()) {
      const bool step_a = !all_a && (all_b || n_a <= n_b);
      const std::string_view text = step_a ? a : b;
      std::size_t& pos = step_a ? pos_a : pos_b;
      const piece next = next_piece(text, pos);
      scratch.clear();
      basic_.for_each_word(text.substr(pos, next.end - pos), [&](std::string_view word) { vocab_.tokenize_word(word, scratch); });
      pos = next.end + next.special_size;
      (step_a ? n_a : n_b) += scratch.size() + (next.special_size > 0);
      (step_a ? all_a : all_b) = pos == text.size();
    }
    return detail::longest_first_lengths(n_a, n_b, budget);
  }

  wordpiece vocab_;
  basic_tokenizer basic_;
  special_tokens specials_;
  std::array<std::pair<std::string, int32_t>, 5> split_tokens_;
  std::array<bool, 256> starts_special_{};  // the first bytes of split_tokens_ ("[")
  int32_t unk_id_ = -1, sep_id_ = -1, pad_id_ = -1, cls_id_ = -1, mask_id_ = -1;
};

}  // namespace bitfit
