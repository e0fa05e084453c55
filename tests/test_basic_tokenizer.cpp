// Basic tokenization: every code point against Hugging Face `tokenizers` (codepoints.tsv, from
// tools/goldens/make_tokenizer_goldens.py), plus the individual steps.
#include <bitfit/text/basic_tokenizer.hpp>

#include <doctest/doctest.h>

#include "test_support.hpp"

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using bitfit::basic_tokenizer;
using bitfit::basic_tokenizer_options;
using words = std::vector<std::string>;

words tok(std::string_view text, basic_tokenizer_options o = {}) { return basic_tokenizer(o).tokenize(text); }

std::string hex(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%X", unsigned(c));
  return buf;
}

/// NFD of `text` with its combining marks in canonical order.
std::u32string nfd(std::u32string_view text) {
  std::u32string out;
  bitfit::detail::nfd_stream stream;
  const auto settle = [&](char32_t c) { out += c; };
  for (const char32_t c : text) stream.push(c, settle);
  stream.finish(settle);
  return out;
}

/// Words as the golden writes them: words joined by " ", code points (hex) joined by ".".
std::string describe(const basic_tokenizer& t, std::string_view text) {
  std::string out;
  t.for_each_word(text, [&](std::string_view w) {
    if (!out.empty()) out += ' ';
    bool first = true;
    for (std::size_t i = 0; i < w.size();) {
      if (!first) out += '.';
      first = false;
      out += hex(bitfit::detail::utf8_next(w, i));
    }
  });
  return out;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  std::size_t b = 0;
  for (std::size_t e; (e = line.find('\t', b)) != std::string::npos; b = e + 1) f.push_back(line.substr(b, e - b));
  f.push_back(line.substr(b));
  return f;
}

// Column order of codepoints.tsv.
const std::array<basic_tokenizer, 4> golden_configs = {
    basic_tokenizer({.lower_case = true}),                          // uncased
    basic_tokenizer({.lower_case = false}),                         // cased
    basic_tokenizer({.lower_case = false, .strip_accents = true}),  // cased_strip
    basic_tokenizer({.lower_case = true, .strip_accents = false}),  // uncased_keep
};

}  // namespace

TEST_CASE("basic tokenizer: every code point in 4 configurations matches tokenizers 0.19") {
  const auto path = bitfit::test::golden_dir() / "tokenizer" / "codepoints.tsv";
  std::ifstream in(path);
  REQUIRE_MESSAGE(bool(in), "missing golden " << path.string());
  std::string line;
  std::getline(in, line);  // header
  std::size_t checked = 0, mismatches = 0;
  std::vector<bool> seen(0x110000, false);
  const auto check_one = [&](char32_t cp, std::size_t config, const std::string& expected) {
    std::string text = "A";
    bitfit::detail::utf8_append(text, cp);
    text += 'B';
    const std::string got = describe(golden_configs[config], text);
    if (got != expected && ++mismatches <= 10)
      MESSAGE("U+" << hex(cp) << " config " << config << ": expected " << expected << ", got " << got);
  };
  while (std::getline(in, line)) {
    const auto f = split_tabs(line);
    REQUIRE(f.size() == 6);
    const auto first = char32_t(std::stoul(f[0], nullptr, 16)), last = char32_t(std::stoul(f[1], nullptr, 16));
    for (char32_t cp = first; cp <= last; ++cp) {
      for (std::size_t k = 0; k < 4; ++k) {
        std::string expected = f[2 + k];
        for (std::size_t p; (p = expected.find('*')) != std::string::npos;) expected.replace(p, 1, hex(cp));
        check_one(cp, k, expected);
      }
      seen[cp] = true;
      ++checked;
    }
  }
  // Hangul syllables decompose algorithmically (Unicode 15, section 3.12); the golden script
  // checks that tokenizers does exactly this.
  for (char32_t cp = 0xAC00; cp <= 0xD7A3; ++cp) {
    const char32_t s = cp - 0xAC00;
    std::string jamo = hex(0x1100 + s / 588) + "." + hex(0x1161 + (s % 588) / 28);
    if (s % 28) jamo += "." + hex(0x11A7 + s % 28);
    check_one(cp, 0, "61." + jamo + ".62");
    check_one(cp, 1, "41." + hex(cp) + ".42");
    check_one(cp, 2, "41." + jamo + ".42");
    check_one(cp, 3, "61." + hex(cp) + ".62");
    seen[cp] = true;
    ++checked;
  }
  std::size_t scalar_values = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) scalar_values += seen[cp];
  CHECK(checked == 0x110000 - 0x800);  // every Unicode scalar value, once
  CHECK(scalar_values == 0x110000 - 0x800);
  CHECK(mismatches == 0);
  MESSAGE("code points checked: " << checked << " x 4 configurations, mismatches: " << mismatches);
}

TEST_CASE("basic tokenizer: cleaning drops controls and turns whitespace into separators") {
  CHECK(tok(std::string("a\0b", 3)) == words{"ab"});
  CHECK(tok("a\x01" "b\x7f" "c") == words{"abc"});
  CHECK(tok("a\u200bb\ufeffc\u00add") == words{"abcd"});  // format characters (Cf)
  CHECK(tok("a\ufffdb") == words{"ab"});
  CHECK(tok("a\u000bb") == words{"ab"});  // vertical tab is a control before it is whitespace
  CHECK(tok("a\tb\nc\rd") == words{"a", "b", "c", "d"});
  CHECK(tok("a\u00a0b\u3000c\u2028d") == words{"a", "b", "c", "d"});
  CHECK(tok("").empty());
  CHECK(tok(" \t\n ").empty());
  CHECK(tok("\ue000").empty());             // private use
  CHECK(tok("\u0378") == words{"\u0378"});  // unassigned: kept, as tokenizers does
}

TEST_CASE("basic tokenizer: punctuation becomes single-character words") {
  CHECK(tok("Hello, world!") == words{"hello", ",", "world", "!"});
  CHECK(tok("don't") == words{"don", "'", "t"});
  CHECK(tok("a$b^c`d~e") == words{"a", "$", "b", "^", "c", "`", "d", "~", "e"});  // ASCII symbols too
  CHECK(tok("«x»—y…") == words{"«", "x", "»", "—", "y", "…"});
  CHECK(tok("a+b") == words{"a", "+", "b"});
  CHECK(tok("a€b") == words{"a€b"});  // Sc is not punctuation outside ASCII
}

TEST_CASE("basic tokenizer: CJK ideographs are spaced, other East Asian scripts are not") {
  CHECK(tok("我爱中文") == words{"我", "爱", "中", "文"});
  CHECK(tok("ab中cd") == words{"ab", "中", "cd"});
  CHECK(tok("ひらがな", {.lower_case = false}) == words{"ひらがな"});
  CHECK(tok("ひらがな") == words{"ひらかな"});  // accent stripping removes the dakuten (U+3099, Mn)
  CHECK(tok("\U00020000x") == words{"\U00020000", "x"});
  CHECK(tok("\U0002B820x") == words{"\U0002B820x"});  // left out by tokenizers' ranges
  CHECK(tok("我爱", {.tokenize_chinese_chars = false}) == words{"我爱"});
}

TEST_CASE("basic tokenizer: lowercasing and accent stripping follow strip_accents") {
  CHECK(tok("Crème BRÛLÉE") == words{"creme", "brulee"});
  CHECK(tok("Crème", {.lower_case = false}) == words{"Crème"});
  CHECK(tok("Crème", {.lower_case = false, .strip_accents = true}) == words{"Creme"});
  CHECK(tok("Crème", {.lower_case = true, .strip_accents = false}) == words{"crème"});
  CHECK(tok("Cre\u0300me") == words{"creme"});                                   // already decomposed
  CHECK(tok("Cre\u0300me", {.lower_case = false}) == words{"Cre\u0300me"});    // no NFC
  CHECK(tok("İ") == words{"i"});
  CHECK(tok("İ", {.lower_case = true, .strip_accents = false}) == words{"i\u0307"});  // full mapping
  CHECK(tok("ΟΔΟΣ") == words{"οδοσ"});  // no final-sigma rule
  CHECK(tok("한") == words{"\u1112\u1161\u11ab"});
  CHECK(tok("豈") == words{"\u8c48"});  // compatibility ideograph: singleton decomposition
}

TEST_CASE("basic tokenizer: NFD puts combining marks in canonical order") {
  const basic_tokenizer_options keep_marks{.lower_case = false, .strip_accents = false};
  // Without accent stripping there is no NFD, so the marks keep their order.
  CHECK(tok("a\u0345\u0301", keep_marks) == words{"a\u0345\u0301"});
  CHECK(nfd(U"a\u0345\u0301\u0316") == U"a\u0316\u0301\u0345");  // class 220 goes before both
  CHECK(nfd(U"\u1EA5") == U"a\u0302\u0301");                     // ấ = a + circumflex + acute
  CHECK(nfd(U"a\u0301\u1DFA") == U"a\u0301\u1DFA");  // class 218 since Unicode 10, unknown to tokenizers: stays
  CHECK(nfd(U"\u0301\u0316b\u0301\u0316") == U"\u0316\u0301b\u0316\u0301");  // a starter ends a run
  CHECK(nfd(U"\u1EA5\u0316") == U"a\u0316\u0302\u0301");  // a decomposition's marks join the run
  // Marks that survive accent stripping (Mc, or unknown to tokenizers) show the order.
  CHECK(tok("a\U0001D16D\U0001D165b") == words{"a\U0001D165\U0001D16Db"});
  CHECK(tok("a\U0001D16D\u1DFAb") == words{"a\U0001D16D\u1DFAb"});
}

TEST_CASE("basic tokenizer: UTF-8 decoding replaces maximal ill-formed subparts") {
  const auto decode = [](std::string_view s) {
    std::u32string out;
    for (std::size_t i = 0; i < s.size();) out += bitfit::detail::utf8_next(s, i);
    return out;
  };
  CHECK(decode("a\xc3\xa9") == U"a\u00e9");
  CHECK(decode("\xf0\x9f\x8d\x95") == U"\U0001F355");
  CHECK(decode("\xff") == U"\ufffd");
  CHECK(decode("\xe2\x82" "A") == U"\ufffd" "A");  // the truncated sequence does not eat 'A'
  CHECK(decode("\xe2\x82") == U"\ufffd");
  CHECK(decode("\xc0\xaf") == U"\ufffd\ufffd");          // overlong: C0 never starts a sequence
  CHECK(decode("\xe0\x80\xaf") == U"\ufffd\ufffd\ufffd");  // E0 needs A0..BF next
  CHECK(decode("\xed\xa0\x80") == U"\ufffd\ufffd\ufffd");  // surrogate
  CHECK(decode("\xf4\x90\x80\x80") == U"\ufffd\ufffd\ufffd\ufffd");  // above U+10FFFF
  CHECK(decode("\xf0\x9f\x98 x") == U"\ufffd x");
  CHECK(decode("\x80\xbf") == U"\ufffd\ufffd");
  CHECK(tok("caf\xc3\xa9 \xff" "bad\xc3") == words{"cafe", "bad"});
  std::string s;
  for (const char32_t c : {U'a', U'\u00e9', U'\u20ac', U'\U0001F355'}) bitfit::detail::utf8_append(s, c);
  CHECK(s == "a\u00e9\u20ac\U0001F355");
  CHECK(bitfit::detail::utf8_length(s) == 4);
}

// Issue #7, hostile input: canonical ordering used to insert each mark into place, O(k^2) on a
// run of k marks of alternating classes. The timeout only guards against that coming back; the
// results are checked.
TEST_CASE("basic tokenizer: 4 MB runs of combining marks of alternating classes" * doctest::timeout(120)) {
  const auto run = [](std::string_view first, std::string_view second, std::size_t pairs) {
    std::string s;
    for (std::size_t i = 0; i < pairs; ++i) (s += first) += second;
    return s;
  };
  const auto times = [](std::string_view unit, std::size_t k) {
    std::string s;
    for (std::size_t i = 0; i < k; ++i) s += unit;
    return s;
  };
  for (const std::size_t pairs : {std::size_t(500), std::size_t(1) << 20}) {  // 2 KB, 4 MB
    CAPTURE(pairs);
    // U+0301 (class 230) and U+0316 (class 220), between two letters: all 220s first, stably.
    std::u32string marks = U"a";
    for (std::size_t i = 0; i < pairs; ++i) marks += U"\u0301\u0316";
    marks += U'b';
    std::u32string ordered = U"a";
    ordered.append(pairs, U'\u0316').append(pairs, U'\u0301') += U'b';
    CHECK(nfd(marks) == ordered);
    const std::string text = "a" + run("\u0301", "\u0316", pairs) + "b";
    CHECK(tok(text) == words{"ab"});  // Mn: stripped
    CHECK(tok(text, {.lower_case = false}) == words{text});  // no NFD without accent stripping
    // U+1D16D (class 226) and U+1D165 (class 216) are Mc: they survive stripping, in order.
    const std::string mc = "a" + run("\U0001D16D", "\U0001D165", pairs / 2) + "b";
    CHECK(tok(mc) == words{"a" + times("\U0001D165", pairs / 2) + times("\U0001D16D", pairs / 2) + "b"});
    // The same marks after every letter: many short runs.
    CHECK(tok(times("a\u0301\u0316\u0301\u0316", pairs / 2)) == words{std::string(pairs / 2, 'a')});
  }
}
