#pragma once
/// @file conllu.hpp
/// Universal Dependencies treebanks in CoNLL-U (https://universaldependencies.org/format.html),
/// read for token-level tagging: per sentence its `sent_id` and its syntactic words with FORM,
/// UPOS and XPOS. Also the tag set of a column, built from the training file.
///
/// What is read and what is refused (every refusal is a `bitfit::error` "<file>:<line>: ..."):
///  - A UTF-8 BOM at the start of the file and CRLF line ends are accepted. Every line must be
///    well-formed UTF-8 (the definition of ill-formed is the tokenizer's, detail::utf8_next).
///  - `#` lines are comments; `# sent_id = X` gives the sentence its id. Comments come before a
///    sentence's word lines, as the format requires: a comment after them is refused (it most
///    often means a missing blank line).
///  - A blank line ends a sentence; the last sentence may end at the end of the file instead.
///    Runs of blank lines are accepted. A sentence without words (only comments, only multiword
///    tokens or empty nodes) is refused.
///  - Every other line has exactly 10 tab-separated, non-empty columns. UPOS and XPOS contain
///    no space (only FORM, LEMMA and MISC may).
///  - ID: word IDs are 1, 2, ..., n in each sentence. A multiword token `N-M` (N < M) must start
///    at the next word and not inside another one; its words N..M must follow before the sentence
///    ends. The token line itself is skipped: the syntactic words carry the tags (EWT's "didn't"
///    is the words "did" and "n't"). An empty node `N.M` (enhanced dependencies) must follow
///    word N (N = 0: before the first word) and is skipped. IDs are decimal without sign or
///    leading zero.
///  - Columns are kept as written: "_" (unspecified) stays "_". EWT fills XPOS everywhere, and
///    FORM "_" is a real word there (5 in train); a treebank without XPOS gives "_" for every
///    word, and its XPOS tag set is {"_"}.
///
/// Cost: one pass over the file, linear in its size; the whole file is held in memory while it is
/// parsed (EWT's train file is 14 MB).

#include <bitfit/core/atomic_file.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/core/json.hpp>
#include <bitfit/text/basic_tokenizer.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitfit {

/// One syntactic word: the columns a tagger needs.
struct conllu_word {
  std::string form;      ///< FORM (column 2), as written; may contain spaces (UD v2)
  std::string upos;      ///< UPOS (column 4): one of the 17 universal tags in a valid treebank
  std::string xpos;      ///< XPOS (column 5): the treebank's own tags (EWT: Penn Treebank); "_" if none
  std::size_t line = 0;  ///< its line in the file, 1-based (messages about its tags name it)
};

/// One sentence: its syntactic words 1..n in order (multiword tokens and empty nodes left out).
struct conllu_sentence {
  std::string id;                  ///< from "# sent_id = ..."; empty when the sentence has none
  std::vector<conllu_word> words;  ///< never empty
  std::size_t line = 0;            ///< the sentence's first line (a comment or its first word), 1-based
};

namespace detail {

/// Offset of the first byte of `s` that is not part of well-formed UTF-8, or npos. Uses the
/// tokenizer's decoder, which gives U+FFFD for each ill-formed subpart: a U+FFFD that was not
/// written as EF BF BD is one.
inline std::size_t first_ill_formed_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t at = i;
    if (utf8_next(s, i) == 0xFFFD && s.substr(at, i - at) != "\xEF\xBF\xBD") return at;
  }
  return std::string_view::npos;
}

/// A CoNLL-U index: decimal digits, no sign, no leading zero ("0" itself is fine: empty nodes
/// before the first word are 0.1, 0.2, ...). nullopt for anything else or above 2^32 - 1.
inline std::optional<std::size_t> conllu_index(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return std::size_t(v);
}

/// `s` in quotes for a message, cut at 40 bytes (lines are checked to be UTF-8 first).
inline std::string conllu_quoted(std::string_view s) {
  std::string out(1, '\'');  // appended, not "'" + ...: GCC 12 warns falsely (-Wrestrict) on that
  out += capped(s, 40);
  out += '\'';
  return out;
}

/// Reads a CoNLL-U text line by line (see the file comment for what it accepts).
class conllu_parser {
 public:
  explicit conllu_parser(std::string source) : source_(std::move(source)) {}

  std::vector<conllu_sentence> parse(std::string_view text) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < text.size();) {
      const std::size_t nl = text.find('\n', pos);
      std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      pos = nl == std::string_view::npos ? text.size() : nl + 1;
      ++line_no;
      if (line.ends_with('\r')) line.remove_suffix(1);
      read_line(line, line_no);
    }
    end_sentence(line_no);
    return std::move(sentences_);
  }

 private:
  [[noreturn]] void fail(std::size_t line_no, const std::string& problem) const {
    throw error(source_ + ":" + std::to_string(line_no) + ": " + problem);
  }

  void read_line(std::string_view line, std::size_t line_no) {
    if (const auto bad = first_ill_formed_utf8(line); bad != std::string_view::npos)
      fail(line_no, "ill-formed UTF-8 at byte " + std::to_string(bad + 1) + " of the line");
    if (line.empty()) return end_sentence(line_no - 1);
    if (!open_) {
      open_ = true;
      current_ = {};
      current_.line = line_no;
      has_id_ = false;
      range_end_ = 0;
    }
    if (line.front() == '#') return read_comment(line, line_no);
    read_token_line(line, line_no);
  }

  void read_comment(std::string_view line, std::size_t line_no) {
    if (!current_.words.empty() || range_end_ > 0)
      fail(line_no, "comment line after the sentence's word lines (a missing blank line before it?)");
    // "# sent_id = X": spaces around "=" are optional; other comments are ignored.
    std::string_view rest = trim(line.substr(1));
    if (!rest.starts_with("sent_id")) return;
    rest = trim(rest.substr(7));
    if (!rest.starts_with('=')) return;
    if (has_id_) fail(line_no, "a second sent_id in one sentence (the first: '" + current_.id + "')");
    current_.id = std::string(trim(rest.substr(1)));
    has_id_ = true;
  }

  void read_token_line(std::string_view line, std::size_t line_no) {
    static constexpr const char* names[10] = {"ID",   "FORM", "LEMMA", "UPOS", "XPOS",
                                              "FEATS", "HEAD", "DEPREL", "DEPS", "MISC"};
    std::string_view col[10];
    std::size_t n = 0;
    for (std::size_t start = 0;; ++n) {
      const std::size_t tab = line.find('\t', start);
      if (n < 10) col[n] = line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start);
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    if (++n != 10) fail(line_no, "expected 10 tab-separated columns, found " + std::to_string(n));
    for (std::size_t c = 0; c < 10; ++c)
      if (col[c].empty()) fail(line_no, std::string(names[c]) + " (column " + std::to_string(c + 1) + ") is empty");
    for (const std::size_t c : {3u, 4u})
      if (col[c].find(' ') != std::string_view::npos)
        fail(line_no, std::string(names[c]) + " " + conllu_quoted(col[c]) + " contains a space");

    const std::string_view id = col[0];
    const std::size_t next = current_.words.size() + 1;
    if (const auto dash = id.find('-'); dash != std::string_view::npos) {
      const auto first = conllu_index(id.substr(0, dash)), last = conllu_index(id.substr(dash + 1));
      if (!first || !last || *first == 0 || *first >= *last)
        fail(line_no, "multiword token ID " + conllu_quoted(id) + " is malformed (expected N-M with 0 < N < M)");
      if (range_end_ >= next)
        fail(line_no, "multiword token " + std::string(id) + " starts inside the multiword token ending at word " +
                          std::to_string(range_end_));
      if (*first != next)
        fail(line_no, "multiword token " + std::string(id) + " does not start at the next word (" +
                          std::to_string(next) + ")");
      range_end_ = *last;
      range_line_ = line_no;
      return;  // its words follow and carry the tags
    }
    if (const auto dot = id.find('.'); dot != std::string_view::npos) {
      const auto word = conllu_index(id.substr(0, dot)), sub = conllu_index(id.substr(dot + 1));
      if (!word || !sub || *sub == 0)
        fail(line_no, "empty node ID " + conllu_quoted(id) + " is malformed (expected N.M with M > 0)");
      if (*word != current_.words.size())
        fail(line_no, "empty node " + std::string(id) + " does not follow word " + std::to_string(*word) +
                          " (the last word is " + std::to_string(current_.words.size()) + ")");
      return;  // enhanced-dependency nodes have no surface word
    }
    const auto index = conllu_index(id);
    if (!index) fail(line_no, "ID " + conllu_quoted(id) + " is not a number (nor N-M nor N.M)");
    if (*index != next)
      fail(line_no, "word ID " + std::string(id) + " where " + std::to_string(next) +
                        " was expected (word IDs are 1, 2, ... in each sentence)");
    current_.words.push_back({std::string(col[1]), std::string(col[3]), std::string(col[4]), line_no});
  }

  /// Closes the open sentence, if any; `last_line` is its last line (for messages).
  void end_sentence(std::size_t last_line) {
    if (!open_) return;
    open_ = false;
    if (current_.words.empty())
      fail(current_.line, "the sentence starting here has no words (ends at line " + std::to_string(last_line) + ")");
    if (range_end_ > current_.words.size())
      fail(range_line_, "the sentence ends at line " + std::to_string(last_line) + " after word " +
                            std::to_string(current_.words.size()) + ", inside this multiword token (up to word " +
                            std::to_string(range_end_) + ")");
    sentences_.push_back(std::move(current_));
  }

  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }

  std::string source_;
  std::vector<conllu_sentence> sentences_;
  conllu_sentence current_;
  bool open_ = false;           // a sentence has begun (a comment or a token line since the last blank)
  bool has_id_ = false;         // current_ had a sent_id line
  std::size_t range_end_ = 0;   // last word of the latest multiword token in current_; 0: none yet
  std::size_t range_line_ = 0;  // that token's line
};

}  // namespace detail

/// Parses CoNLL-U `text`; `source` names it in messages ("<source>:<line>: ...").
inline std::vector<conllu_sentence> parse_conllu(std::string_view text, std::string source) {
  return detail::conllu_parser(std::move(source)).parse(text);
}

/// Reads a CoNLL-U file (e.g. UD English-EWT's en_ewt-ud-train.conllu).
inline std::vector<conllu_sentence> read_conllu(const std::filesystem::path& path) {
  return parse_conllu(detail::read_file(path), path.string());
}

/// The FORMs of a sentence's words, in order: the input of bert_tokenizer::encode_words.
inline std::vector<std::string> word_forms(const conllu_sentence& sentence) {
  std::vector<std::string> out;
  out.reserve(sentence.words.size());
  for (const auto& w : sentence.words) out.push_back(w.form);
  return out;
}

/// Which column a tagger predicts.
enum class tag_column { upos, xpos };

/// "UPOS" or "XPOS".
inline std::string tag_column_name(tag_column column) { return column == tag_column::upos ? "UPOS" : "XPOS"; }

/// The column named `name` ("upos" or "xpos", any case).
inline tag_column tag_column_named(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (name == "upos") return tag_column::upos;
  if (name == "xpos") return tag_column::xpos;
  throw error("unknown tag column '" + detail::capped(name, 40) + "' (known: upos, xpos)");
}

/// The tags of one column, sorted (byte order) so that ids do not depend on the order of the
/// training file; a tag's id is its index. An unknown tag in dev or test data is an error naming
/// its file and line, not a fallback class: UPOS is a closed set of 17, and in EWT the XPOS tags
/// of dev and test all occur in train, so an unknown tag means the wrong file or column, and
/// mapping it to some class would quietly change the scores.
struct tag_set {
  tag_column column = tag_column::upos;
  std::vector<std::string> tags;  ///< sorted, unique

  /// Number of tags (the classifier's outputs).
  int size() const noexcept { return int(tags.size()); }

  /// The id of `tag`, or -1 if it is not in the set.
  int id(std::string_view tag) const {
    const auto it = std::lower_bound(tags.begin(), tags.end(), tag);
    return it != tags.end() && *it == tag ? int(it - tags.begin()) : -1;
  }

  /// The word's tag in this set's column.
  const std::string& tag_of(const conllu_word& word) const { return column == tag_column::upos ? word.upos : word.xpos; }

  /// One tag id per word of `sentence`; an unknown tag throws "<source>:<line>: ...", with
  /// `source` the file the sentence was read from.
  std::vector<int32_t> word_labels(const conllu_sentence& sentence, const std::string& source) const {
    std::vector<int32_t> out;
    out.reserve(sentence.words.size());
    for (const auto& w : sentence.words) {
      const int i = id(tag_of(w));
      if (i < 0)
        throw error(source + ":" + std::to_string(w.line) + ": " + tag_column_name(column) + " tag " +
                    detail::conllu_quoted(tag_of(w)) + " of word " + detail::conllu_quoted(w.form) +
                    " is not in the tag set (" + std::to_string(tags.size()) + " tags, from the training data)");
      out.push_back(int32_t(i));
    }
    return out;
  }
};

/// A CoNLL-U `text` (one that parse_conllu accepted) with `column` rewritten on some word lines:
/// `line_tags` pairs a 1-based line number (conllu_word::line) with the tag to write there, lines
/// ascending. Every other byte is kept (comments, multiword tokens, the other columns, CRLF): the
/// output of a tagger is its input with one column filled. Throws if a line is not a word line of
/// `text`, the lines are not ascending, or a tag is not a valid column value (empty, or with a
/// space, tab or line break).
inline std::string with_tags(std::string_view text, tag_column column,
                             const std::vector<std::pair<std::size_t, std::string>>& line_tags) {
  const std::size_t field = column == tag_column::upos ? 3 : 4;  // 0-based: ID FORM LEMMA UPOS XPOS ...
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::size_t line_no = 0, pos = 0;
  auto next = line_tags.begin();
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    const std::string_view line = text.substr(pos, end - pos);
    pos = end;
    ++line_no;
    if (next == line_tags.end() || next->first != line_no) {
      check(next == line_tags.end() || next->first > line_no,
            "with_tags: line " + std::to_string(next == line_tags.end() ? 0 : next->first) + " is out of order");
      out += line;
      continue;
    }
    const std::string& tag = next->second;
    check(!tag.empty() && tag.find_first_of(" \t\r\n") == std::string::npos,
          "with_tags: " + detail::conllu_quoted(tag) + " cannot be a CoNLL-U column (empty, or a space, tab or line break)");
    // Start and end of the field: after `field` tabs, up to the next tab.
    std::size_t start = 0;
    for (std::size_t k = 0; k < field && start != std::string_view::npos; ++k) start = line.find('\t', start) + 1;
    const std::size_t stop = start == 0 ? std::string_view::npos : line.find('\t', start);
    check(start != 0 && stop != std::string_view::npos && !line.starts_with('#'),
          "with_tags: line " + std::to_string(line_no) + " is not a word line");
    out.append(line.substr(0, start)).append(tag).append(line.substr(stop));
    ++next;
  }
  check(next == line_tags.end(), "with_tags: line " + std::to_string(next == line_tags.end() ? 0 : next->first) +
                                     " is past the end of the text (" + std::to_string(line_no) + " lines)");
  return out;
}

/// The tag set of `column` over `sentences` (the training split). Throws if there are no words.
inline tag_set make_tag_set(const std::vector<conllu_sentence>& sentences, tag_column column) {
  tag_set set{column, {}};
  std::set<std::string_view> seen;  // views into `sentences`, copied once at the end
  for (const auto& s : sentences)
    for (const auto& w : s.words) seen.insert(set.tag_of(w));
  check(!seen.empty(), "make_tag_set: no words to take " + tag_column_name(column) + " tags from");
  set.tags.assign(seen.begin(), seen.end());
  return set;
}

}  // namespace bitfit
