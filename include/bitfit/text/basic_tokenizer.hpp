#pragma once
/// @file basic_tokenizer.hpp
/// BERT's basic tokenization (text cleaning, CJK spacing, accent stripping, lowercasing,
/// whitespace and punctuation splitting), defined to give the same words as Hugging Face
/// `tokenizers` (`BertNormalizer` followed by `BertPreTokenizer`, the pipeline behind
/// `BertTokenizerFast`).
///
/// Steps, in the order `tokenizers` applies them:
///  1. UTF-8 decoding. Invalid byte sequences become U+FFFD, one per maximal ill-formed subpart,
///     exactly as Python's `bytes.decode("utf-8", errors="replace")`; step 2 then drops them.
///  2. Cleaning: U+0000, U+FFFD and "control" characters (categories Cc, Cf, Co; tab, LF and CR
///     excepted) are dropped; whitespace (tab, LF, CR, Unicode White_Space) becomes a space.
///  3. CJK ideographs get a space on each side.
///  4. Accent stripping (if enabled): canonical decomposition (NFD; each run of combining marks
///     stably sorted by combining class), then every nonspacing mark (category Mn) is removed.
///  5. Lowercasing (if enabled): the full lowercase mapping of each code point, without context
///     (no final-sigma rule).
///  6. Splitting on spaces; every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and
///     categories P*) becomes a word of its own.
///
/// The character classes are those of `tokenizers` 0.19 exactly, read off the library into
/// unicode_tables.hpp: Unicode 8.0 categories (a character assigned later, e.g. U+1F970, is
/// kept as a letter; unassigned code points are kept too) and CJK ranges that leave out
/// U+2B820..U+2B91F. utf8proc does NFD and lowercasing; code points whose decomposition or
/// combining class the Unicode 9.0 NFD of `tokenizers` does not know are left alone.
/// tests/test_basic_tokenizer.cpp checks every code point against the fast tokenizer.

#include <bitfit/text/unicode_tables.hpp>

#include <utf8proc.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace bitfit {

namespace detail {

/// Decodes the code point starting at `s[i]` and advances `i` past it. An ill-formed sequence
/// yields U+FFFD and consumes its maximal subpart (Unicode 15, section 3.9, "U+FFFD
/// Substitution of Maximal Subparts"), which is also what CPython's decoder consumes.
inline char32_t utf8_next(std::string_view s, std::size_t& i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i++]);
  if (b0 < 0x80) return b0;
  int trailing = 0;
  char32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the next byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    trailing = 1;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    trailing = 2;
    cp = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0;       // no overlong forms
    else if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    trailing = 3;
    cp = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90;       // no overlong forms
    else if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0xFFFD;  // stray continuation byte or a byte that never occurs in UTF-8
  }
  for (int k = 0; k < trailing; ++k) {
    if (i >= s.size()) return 0xFFFD;
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < lo || b > hi) return 0xFFFD;  // `b` is not consumed: it may start the next character
    cp = (cp << 6) | (b & 0x3Fu);
    ++i;
    lo = 0x80;
    hi = 0xBF;
  }
  return cp;
}

/// Appends the UTF-8 encoding of `cp` (a Unicode scalar value) to `out`.
inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

/// Number of code points in valid UTF-8 text (counts the bytes that are not continuations).
inline std::size_t utf8_length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

/// Tab, LF, CR and the Unicode White_Space characters that are not controls.
inline bool is_bert_whitespace(char32_t c) noexcept {
  if (c < 0x80) return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r';
  return unicode_tables::contains(unicode_tables::white_space, c);
}

/// Dropped by the cleaning step: categories Cc, Cf, Cs and Co (Unicode 8.0), except tab, LF, CR.
inline bool is_bert_control(char32_t c) noexcept {
  if (c < 0x80) return (c < 0x20 && c != U'\t' && c != U'\n' && c != U'\r') || c == 0x7F;
  return unicode_tables::contains(unicode_tables::control, c);
}

/// BERT's punctuation: all non-alphanumeric printable ASCII, plus Unicode categories P*.
inline bool is_bert_punctuation(char32_t c) noexcept {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return unicode_tables::contains(unicode_tables::punctuation, c);
}

/// The CJK ideograph blocks that get spaces around them (Hangul, kana and CJK punctuation are
/// not among them).
inline bool is_cjk_ideograph(char32_t c) noexcept {
  return c >= 0x3400 && unicode_tables::contains(unicode_tables::cjk, c);
}

/// Category Mn: what accent stripping removes after NFD.
inline bool is_nonspacing_mark(char32_t c) noexcept {
  return c >= 0x300 && unicode_tables::contains(unicode_tables::nonspacing_mark, c);
}

/// Appends the full lowercase mapping of `c` (Rust's `char::to_lowercase`, no context rules).
inline void append_lowercase(std::u32string& out, char32_t c) {
  if (c == 0x130) {  // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
    out += U'i';
    out += char32_t(0x307);
    return;
  }
  out += static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}

/// Canonical combining class, as the NFD of `tokenizers` knows it.
inline int combining_class(char32_t c) noexcept {
  if (c < 0x300 || unicode_tables::contains(unicode_tables::nfd_unknown, c)) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

/// Writes the canonical decomposition (NFD, as `tokenizers` knows it) of `c` to `buf` and
/// returns its length; `c` itself if it does not decompose.
inline int canonical_decomposition(char32_t c, char32_t (&buf)[8]) noexcept {
  buf[0] = c;
  if (c < 0xC0 || unicode_tables::contains(unicode_tables::nfd_unknown, c)) return 1;  // nothing below U+00C0 decomposes
  utf8proc_int32_t out[8];
  int boundclass = 0;
  const utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), out, 8, UTF8PROC_DECOMPOSE, &boundclass);
  if (n <= 0 || n > 8) return 1;  // canonical decompositions are at most 4 long
  for (utf8proc_ssize_t k = 0; k < n; ++k) buf[k] = static_cast<char32_t>(out[k]);
  return int(n);
}

/// NFD of a stream of code points: `push(c, settle)` decomposes `c` and calls `settle(d)` for
/// each resulting code point once its place is final. Canonical ordering: a run of combining
/// marks (class != 0) is held until the next starter (class 0) or `finish`, then stably sorted
/// by combining class, which is exactly the Unicode canonical ordering algorithm, in O(k log k)
/// for a run of k marks (an insertion per mark would be O(k^2) on marks of alternating classes).
class nfd_stream {
 public:
  template <class Settle>
  void push(char32_t c, Settle&& settle) {
    char32_t buf[8];
    const int n = canonical_decomposition(c, buf);
    for (int k = 0; k < n; ++k) {
      const int ccc = combining_class(buf[k]);
      if (ccc != 0) {
        marks_.push_back({ccc, buf[k]});
      } else {
        finish(settle);
        settle(buf[k]);
      }
    }
  }

  /// Settles the marks held back (the end of the text).
  template <class Settle>
  void finish(Settle&& settle) {
    if (marks_.size() > 1)
      std::stable_sort(marks_.begin(), marks_.end(), [](const mark& x, const mark& y) { return x.ccc < y.ccc; });
    for (const mark& m : marks_) settle(m.code_point);
    marks_.clear();
  }

 private:
  struct mark {
    int ccc;
    char32_t code_point;
  };
  std::vector<mark> marks_;  // the current run of combining marks, in text order
};

}  // namespace detail

/// The switches of BERT's basic tokenization (`tokenizer_config.json` names in brackets).
struct basic_tokenizer_options {
  bool lower_case = true;                  ///< [do_lower_case] lowercase every character
  std::optional<bool> strip_accents = {};  ///< [strip_accents] unset: strip when lowercasing
  bool tokenize_chinese_chars = true;      ///< [tokenize_chinese_chars] CJK ideographs become words
};

/// Splits text into BERT words: normalized, whitespace-separated, punctuation isolated.
class basic_tokenizer {
 public:
  explicit basic_tokenizer(basic_tokenizer_options options = {}) noexcept : options_(options) {}

  const basic_tokenizer_options& options() const noexcept { return options_; }
  /// Whether accents are stripped: `strip_accents` when set, else `lower_case` (as in HF).
  bool strips_accents() const noexcept { return options_.strip_accents.value_or(options_.lower_case); }

  /// Calls `emit(std::string_view word)` for each word of `text`, in order. The view is valid
  /// only during the call. Any byte string is accepted (see the file comment for invalid UTF-8).
  /// If `emit` returns a bool, false stops the tokenization after that word. Returns false if
  /// `emit` stopped it (possibly at the last word), true otherwise.
  ///
  /// One pass, in time linear in the text (O(k log k) for a run of k combining marks) and memory
  /// of one word plus one run of marks; words are emitted as soon as they end, so a caller that
  /// stops early pays only for the prefix it read.
  template <class Emit>
  bool for_each_word(std::string_view text, Emit&& emit) const {
    const bool strip = strips_accents();
    bool go = true;    // false once `emit` asked to stop
    std::string word;  // the current word, UTF-8
    const auto close_word = [&] {
      if (word.empty() || !go) return;
      if constexpr (std::is_same_v<std::invoke_result_t<Emit&, std::string_view>, bool>) {
        go = emit(std::string_view(word));
      } else {
        emit(std::string_view(word));
      }
      word.clear();
    };
    // Steps 4 (mark removal), 5 and 6 for a code point whose place after NFD is final.
    std::u32string lowered;
    const auto settle = [&](char32_t c) {
      if (strip && detail::is_nonspacing_mark(c)) return;
      lowered.clear();
      if (options_.lower_case) detail::append_lowercase(lowered, c);
      else lowered += c;
      for (const char32_t l : lowered) {
        if (detail::is_bert_whitespace(l)) {
          close_word();
        } else if (detail::is_bert_punctuation(l)) {
          close_word();
          detail::utf8_append(word, l);
          close_word();
        } else {
          detail::utf8_append(word, l);
        }
      }
    };
    detail::nfd_stream nfd;
    const auto push = [&](char32_t c) {  // step 4's NFD, when accents are stripped
      if (strip) nfd.push(c, settle);
      else settle(c);
    };
    // Steps 1-3.
    for (std::size_t i = 0; i < text.size() && go;) {
      const char32_t c = detail::utf8_next(text, i);
      if (c == 0 || c == 0xFFFD || detail::is_bert_control(c)) continue;
      if (detail::is_bert_whitespace(c)) {
        push(U' ');
      } else if (options_.tokenize_chinese_chars && detail::is_cjk_ideograph(c)) {
        push(U' ');
        push(c);
        push(U' ');
      } else {
        push(c);
      }
    }
    if (go) nfd.finish(settle);
    close_word();
    return go;
  }

  /// The words of `text` as strings.
  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> out;
    for_each_word(text, [&](std::string_view w) { out.emplace_back(w); });
    return out;
  }

 private:
  basic_tokenizer_options options_;
};

}  // namespace bitfit
