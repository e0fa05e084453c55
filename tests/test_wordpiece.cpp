// WordPiece: vocabulary loading and greedy longest-match-first splitting.
#include <bitfit/text/wordpiece.hpp>

#include <doctest/doctest.h>

#include "test_support.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using bitfit::wordpiece;
using bitfit::test::error_of;
using bitfit::test::temp_dir;
using ids = std::vector<int32_t>;

namespace {

// The example of the original BERT code, ids = positions.
wordpiece small_vocab(int max_chars = 100) {
  return wordpiece({"[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ",", "é", "##é"},
                   "[UNK]", max_chars);
}

ids pieces(const wordpiece& wp, std::string_view word) {
  ids out;
  wp.tokenize_word(word, out);
  return out;
}


}  // namespace

TEST_CASE("wordpiece: greedy longest match first with ## continuations") {
  const auto wp = small_vocab();
  CHECK(pieces(wp, "unwanted") == ids{7, 4, 5});  // un ##want ##ed
  CHECK(pieces(wp, "running") == ids{8, 9});      // runn ##ing
  CHECK(pieces(wp, "want") == ids{3});
  CHECK(pieces(wp, "wa") == ids{6});
  CHECK(pieces(wp, ",") == ids{10});
  CHECK(pieces(wp, "unwantedx") == ids{0});  // one unmatched piece makes the whole word [UNK]
  CHECK(pieces(wp, "ed") == ids{0});         // "##ed" only continues a word
  CHECK(pieces(wp, "éé") == ids{11, 12});
  CHECK(pieces(wp, "").empty());
  ids out{42};
  wp.tokenize_word("unwantedx", out);  // appends; a failed word rolls back its pieces
  CHECK(out == ids{42, 0});
}

TEST_CASE("wordpiece: words longer than max_input_chars_per_word code points are [UNK]") {
  const wordpiece wp({"[UNK]", "a", "##a", "é", "##é"});
  CHECK(pieces(wp, std::string(100, 'a')).size() == 100);
  CHECK(pieces(wp, std::string(101, 'a')) == ids{0});
  std::string e100;
  for (int i = 0; i < 100; ++i) e100 += "é";  // 200 bytes, 100 code points
  CHECK(pieces(wp, e100).size() == 100);
  CHECK(pieces(wp, e100 + "é") == ids{0});
  const auto short_limit = small_vocab(5);
  CHECK(pieces(short_limit, "runnin") == ids{0});
  CHECK(pieces(short_limit, "want") == ids{3});
}

TEST_CASE("wordpiece: malformed UTF-8 in a word never reads out of bounds") {
  const wordpiece wp({"[UNK]", "a", "##a", "\xc3"});
  CHECK(pieces(wp, "\x80\x80\x80") == ids{0});
  CHECK(pieces(wp, "a\x80") == ids{0});
  CHECK(pieces(wp, "\xc3") == ids{3});
}

TEST_CASE("wordpiece: ids are line numbers; duplicates keep the last line") {
  const wordpiece wp({"[UNK]", "x", "##y", "x"});
  CHECK(wp.size() == 4);
  CHECK(wp.id_of("x") == 3);
  CHECK(wp.id_of("##y") == 2);
  CHECK(wp.id_of("nope") == -1);
  CHECK(wp.token(1) == "x");
  CHECK(wp.unk_id() == 0);
  CHECK(pieces(wp, "xy") == ids{3, 2});
  CHECK_THROWS_AS(wp.token(4), bitfit::error);
  CHECK_THROWS_AS(wp.token(-1), bitfit::error);
}

TEST_CASE("wordpiece: the model's vocabulary") {
  const auto wp = wordpiece::from_file(bitfit::test::model_dir() / "vocab.txt");
  CHECK(wp.size() == 30522);
  CHECK(wp.id_of("[PAD]") == 0);
  CHECK(wp.id_of("[UNK]") == 100);
  CHECK(wp.id_of("[CLS]") == 101);
  CHECK(wp.id_of("[SEP]") == 102);
  CHECK(wp.id_of("[MASK]") == 103);
  CHECK(wp.id_of("hello") == 7592);
  CHECK(wp.unk_id() == 100);
  CHECK(pieces(wp, "unaffable") == ids{14477, 20961, 3468});  // una ##ffa ##ble
  CHECK(wp.token(14477) + wp.token(20961) + wp.token(3468) == "una##ffa##ble");
}

TEST_CASE("wordpiece: vocabulary files") {
  temp_dir dir;
  SUBCASE("LF, CRLF and a last line without newline") {
    const auto wp = wordpiece::from_file(dir.write("v.txt", "[UNK]\r\nab\n##c\r\nd"));
    CHECK(wp.size() == 4);
    CHECK(wp.id_of("ab") == 1);
    CHECK(wp.id_of("##c") == 2);
    CHECK(wp.id_of("d") == 3);
    CHECK(pieces(wp, "abc") == ids{1, 2});
  }
  SUBCASE("an empty line is a token id too") {
    const auto wp = wordpiece::from_file(dir.write("v.txt", "[UNK]\n\nx\n"));
    CHECK(wp.size() == 3);
    CHECK(wp.id_of("x") == 2);
  }
  SUBCASE("a missing file is an error naming it") {
    const auto missing = dir.path / "nope" / "vocab.txt";
    const auto msg = error_of([&] { wordpiece::from_file(missing); });
    CHECK(msg.find(missing.string()) != std::string::npos);
    CHECK(msg.find("cannot open") != std::string::npos);
  }
  SUBCASE("an empty file is an error naming it") {
    const auto p = dir.write("empty.txt", "");
    const auto msg = error_of([&] { wordpiece::from_file(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("empty") != std::string::npos);
  }
  SUBCASE("a vocabulary without the unknown token is an error naming the file") {
    const auto p = dir.write("nounk.txt", "a\nb\n");
    const auto msg = error_of([&] { wordpiece::from_file(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("[UNK]") != std::string::npos);
  }
  SUBCASE("a directory is not a vocabulary file") {
    CHECK_THROWS_AS(wordpiece::from_file(dir.path), bitfit::error);
  }
}

TEST_CASE("wordpiece: invalid construction arguments") {
  CHECK_THROWS_AS(wordpiece({}), bitfit::error);
  CHECK_THROWS_AS(wordpiece({"a"}, "[UNK]"), bitfit::error);
  CHECK_THROWS_AS(wordpiece({"[UNK]"}, "[UNK]", 0), bitfit::error);
  CHECK_THROWS_AS(wordpiece({"[UNK]"}, "[UNK]", 100, ""), bitfit::error);
}
