// CoNLL-U reading: the three UD English-EWT v2.16 files of ../shared/data/ud_english_ewt give the
// sentence and word counts its README records, 17 UPOS and 49 XPOS tags in train, and dev/test
// tags all inside train's sets; the format's corners (comments, sent_id, multiword tokens, empty
// nodes, CRLF, a BOM, no final blank line) on hand-made text; and every malformed line of the
// hand-made fixtures below fails naming the file and the line. The words of the word-alignment
// goldens (read by tools/goldens/make_word_alignment_goldens.py's own reader) are ours.
#include "test_support.hpp"

#include <bitfit/data/conllu.hpp>

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace bitfit;
using bitfit::test::error_of;
using bitfit::test::temp_dir;
namespace fs = std::filesystem;

namespace {

fs::path ewt(const std::string& split) { return bitfit::test::data_dir() / "ud_english_ewt" / ("en_ewt-ud-" + split + ".conllu"); }

std::size_t word_count(const std::vector<conllu_sentence>& sentences) {
  std::size_t n = 0;
  for (const auto& s : sentences) n += s.words.size();
  return n;
}

/// A word line with the given ID, FORM, UPOS and XPOS; the other columns as EWT writes them.
std::string word(const std::string& id, const std::string& form, const std::string& upos = "NOUN",
                 const std::string& xpos = "NN") {
  return id + "\t" + form + "\t" + form + "\t" + upos + "\t" + xpos + "\t_\t0\troot\t0:root\t_\n";
}

/// The message parsing `text` (named "fixture.conllu") fails with, or "(no error)".
std::string parse_error(const std::string& text) {
  return error_of([&] { parse_conllu(text, "fixture.conllu"); });
}

}  // namespace

TEST_CASE("conllu: UD English-EWT has the documented sentences, words and tags") {
  if (!fs::exists(ewt("train"))) {
    MESSAGE("skipped: " << ewt("train").string() << " is missing (set BITFIT_DATA_DIR)");
    return;
  }
  struct expected {
    std::string split;
    std::size_t sentences, words;
  };
  const auto train = read_conllu(ewt("train"));
  const auto upos = make_tag_set(train, tag_column::upos), xpos = make_tag_set(train, tag_column::xpos);
  for (const auto& e : {expected{"train", 12544, 204577}, expected{"dev", 2001, 25147}, expected{"test", 2077, 25094}}) {
    CAPTURE(e.split);
    const auto sentences = e.split == "train" ? train : read_conllu(ewt(e.split));
    CHECK(sentences.size() == e.sentences);
    CHECK(word_count(sentences) == e.words);
    std::set<std::string> ids;
    std::size_t last_line = 0;
    for (const auto& s : sentences) {
      CHECK_FALSE(s.id.empty());
      ids.insert(s.id);
      CHECK(s.line > last_line);
      for (const auto& w : s.words) CHECK(w.line > s.line);
      last_line = s.words.back().line;
      // Every dev and test tag is in train's sets: an unknown one would throw, naming its line.
      CHECK(upos.word_labels(s, ewt(e.split).string()).size() == s.words.size());
      CHECK(xpos.word_labels(s, ewt(e.split).string()).size() == s.words.size());
    }
    CHECK(ids.size() == sentences.size());  // sent_ids are unique
    MESSAGE(e.split << ": " << sentences.size() << " sentences, " << word_count(sentences) << " words");
  }
  CHECK(upos.tags == std::vector<std::string>{"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
                                              "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"});
  std::string all;
  for (const auto& t : xpos.tags) all += t + " ";
  MESSAGE("XPOS: " << xpos.size() << " tags: " << all);
  CHECK(xpos.size() == 49);
  CHECK(xpos.id("NN") >= 0);
  CHECK(xpos.id("-LRB-") == 3);  // byte order: $ '' , -LRB- ...
  CHECK(xpos.id("NOUN") == -1);

  // The first sentence of dev, and a multiword token: "didn't" is the words "did" and "n't".
  const auto dev = read_conllu(ewt("dev"));
  CHECK(dev[0].id == "weblog-blogspot.com_nominations_20041117172713_ENG_20041117_172713-0001");
  CHECK(dev[0].line == 1);
  CHECK(word_forms(dev[0]) == std::vector<std::string>{"From", "the", "AP", "comes", "this", "story", ":"});
  CHECK(dev[0].words[2].upos == "PROPN");
  CHECK(dev[0].words[2].xpos == "NNP");
  CHECK(dev[0].words[0].line == 5);
  std::size_t split_contractions = 0;
  for (const auto& s : dev)
    for (std::size_t i = 0; i + 1 < s.words.size(); ++i) {
      CHECK(s.words[i].form != "didn't");
      split_contractions += s.words[i].form == "did" && s.words[i + 1].form == "n't";
    }
  CHECK(split_contractions > 0);
  // FORM "_" is a real word in train (five NFP tokens), kept as written.
  std::size_t underscores = 0;
  for (const auto& s : train)
    for (const auto& w : s.words) underscores += w.form == "_";
  CHECK(underscores == 5);
}

TEST_CASE("conllu: comments, sent_id, multiword tokens, empty nodes, CRLF, BOM, no final blank line") {
  const std::string text = "# newdoc id = d1\n"
                           "# sent_id = s-1\n"
                           "# text = I didn't.\n" +
                           word("1", "I", "PRON", "PRP") + "2-3\tdidn't\t_\t_\t_\t_\t_\t_\t_\t_\n" +
                           word("2", "did", "AUX", "VBD") + word("3", "n't", "PART", "RB") +
                           "3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t2:conj\t_\n" + word("4", ".", "PUNCT", ".") +
                           "\n\n\n"  // runs of blank lines are accepted
                           "#sent_id=s-2   \n" +
                           "0.1\tx\tx\tX\tX\t_\t_\t_\t_\t_\n" + word("1", "New York", "PROPN", "_") +
                           word("2", "_", "PUNCT", "NFP");  // no final newline
  for (const auto& variant : {text, "\xEF\xBB\xBF" + text}) {
    const auto s = parse_conllu(variant, "t.conllu");
    REQUIRE(s.size() == 2);
    CHECK(s[0].id == "s-1");
    CHECK(s[0].line == 1);
    CHECK(word_forms(s[0]) == std::vector<std::string>{"I", "did", "n't", "."});
    CHECK(s[0].words[1].upos == "AUX");
    CHECK(s[0].words[2].xpos == "RB");
    CHECK(s[0].words[0].line == 4);
    CHECK(s[0].words[3].line == 9);
    CHECK(s[1].id == "s-2");  // spaces around "=" optional, trailing ones dropped
    CHECK(s[1].line == 13);
    CHECK(word_forms(s[1]) == std::vector<std::string>{"New York", "_"});  // a space inside FORM (UD v2)
    CHECK(s[1].words[0].xpos == "_");                                      // "_" kept as written
  }
  // CRLF everywhere: the same sentences and lines.
  std::string crlf;
  for (const char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const auto s = parse_conllu(crlf, "crlf.conllu");
  REQUIRE(s.size() == 2);
  CHECK(s[0].words[3].form == ".");
  CHECK(s[1].words[1].xpos == "NFP");
  CHECK(s[1].words[1].line == 16);
  // No sent_id: an empty id. Other comments, even ones mentioning sent_id, are ignored.
  const auto plain = parse_conllu("# sent_id_note = x\n# text = a\n" + word("1", "a"), "p.conllu");
  REQUIRE(plain.size() == 1);
  CHECK(plain[0].id.empty());
  CHECK(parse_conllu("", "empty.conllu").empty());
  CHECK(parse_conllu("\n\n", "blank.conllu").empty());
}

TEST_CASE("conllu: with_tags fills one column and keeps every other byte") {
  const std::string text = "\xEF\xBB\xBF# sent_id = a\r\n" + word("1", "I", "_", "_") + "2-3\tdidn't\t_\t_\t_\t_\t_\t_\t_\t_\n" +
                           word("2", "did", "_", "_") + word("3", "n't", "_", "_") + "3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t_\t_\n" +
                           "\n" + word("1", "New York", "_", "_");
  const auto s = parse_conllu(text, "t.conllu");
  REQUIRE(s.size() == 2);
  std::vector<std::pair<std::size_t, std::string>> tags;
  for (const auto& sentence : s)
    for (const auto& w : sentence.words) tags.emplace_back(w.line, w.form == "did" ? "VBD" : "NN");
  const auto xpos = with_tags(text, tag_column::xpos, tags);
  const auto again = parse_conllu(xpos, "out.conllu");
  REQUIRE(again.size() == 2);
  CHECK(again[0].words[1].xpos == "VBD");
  CHECK(again[0].words[1].upos == "_");  // the other column untouched
  CHECK(again[1].words[0].xpos == "NN");
  CHECK(again[1].words[0].form == "New York");
  // Byte for byte: the input with "_" replaced in column 5 of the word lines only (BOM, CRLF,
  // the multiword token and the empty node kept).
  std::string expected = text;
  for (const auto& [from, to] : {std::pair{"1\tI\tI\t_\t_", "1\tI\tI\t_\tNN"}, {"2\tdid\tdid\t_\t_", "2\tdid\tdid\t_\tVBD"},
                                 {"3\tn't\tn't\t_\t_", "3\tn't\tn't\t_\tNN"}, {"1\tNew York\tNew York\t_\t_", "1\tNew York\tNew York\t_\tNN"}})
    expected.replace(expected.find(from), std::string(from).size(), to);
  CHECK(xpos == expected);
  CHECK(with_tags(text, tag_column::upos, tags).find("2\tdid\tdid\tVBD\t_") != std::string::npos);
  CHECK(with_tags(text, tag_column::upos, {}) == text);
  // Refusals: a comment line, out of order, past the end, a tag that would break the format.
  CHECK(error_of([&] { with_tags(text, tag_column::upos, {{1, "X"}}); }) == "with_tags: line 1 is not a word line");
  CHECK(error_of([&] { with_tags(text, tag_column::upos, {{4, "X"}, {2, "X"}}); }) == "with_tags: line 2 is out of order");
  CHECK(error_of([&] { with_tags(text, tag_column::upos, {{99, "X"}}); }).find("line 99 is past the end") != std::string::npos);
  CHECK(error_of([&] { with_tags(text, tag_column::upos, {{2, "A B"}}); }).find("cannot be a CoNLL-U column") != std::string::npos);
  CHECK(error_of([&] { with_tags(text, tag_column::upos, {{2, ""}}); }).find("cannot be a CoNLL-U column") != std::string::npos);
}

TEST_CASE("conllu: every malformed line names the file and the line") {
  const std::string w1 = word("1", "a"), w2 = word("2", "b");
  struct bad {
    std::string text, message;
  };
  const std::vector<bad> cases = {
      {w1 + "2\tb\tb\tNOUN\tNN\t_\t0\troot\t_\n", "fixture.conllu:2: expected 10 tab-separated columns, found 9"},
      {w1 + "2\tb\tb\tNOUN\tNN\t_\t0\troot\t_\t_\t_\n", "fixture.conllu:2: expected 10 tab-separated columns, found 11"},
      {w1 + " \n", "fixture.conllu:2: expected 10 tab-separated columns, found 1"},
      {"1\ta b\n", "fixture.conllu:1: expected 10 tab-separated columns, found 2"},
      {word("1", ""), "fixture.conllu:1: FORM (column 2) is empty"},
      {w1 + word("2", "b", ""), "fixture.conllu:2: UPOS (column 4) is empty"},
      {word("1", "a", "NOUN", ""), "fixture.conllu:1: XPOS (column 5) is empty"},
      {"1\ta\ta\tNOUN\tNN\t_\t0\troot\t\t_\n", "fixture.conllu:1: DEPS (column 9) is empty"},
      {word("1", "a", "NO UN"), "fixture.conllu:1: UPOS 'NO UN' contains a space"},
      {w1 + word("3", "c"), "fixture.conllu:2: word ID 3 where 2 was expected"},
      {w1 + word("1", "c"), "fixture.conllu:2: word ID 1 where 2 was expected"},
      {word("0", "a"), "fixture.conllu:1: word ID 0 where 1 was expected"},
      {word("2", "a"), "fixture.conllu:1: word ID 2 where 1 was expected"},
      {w1 + "\n" + word("2", "a"), "fixture.conllu:3: word ID 2 where 1 was expected"},  // IDs restart per sentence
      {word("01", "a"), "fixture.conllu:1: ID '01' is not a number"},
      {word("x", "a"), "fixture.conllu:1: ID 'x' is not a number"},
      {word("+1", "a"), "fixture.conllu:1: ID '+1' is not a number"},
      {word("1x", "a"), "fixture.conllu:1: ID '1x' is not a number"},
      {word("99999999999", "a"), "fixture.conllu:1: ID '99999999999' is not a number"},
      {word("2-1", "ab") + w1, "fixture.conllu:1: multiword token ID '2-1' is malformed"},
      {word("1-1", "ab") + w1, "fixture.conllu:1: multiword token ID '1-1' is malformed"},
      {word("1-", "ab") + w1, "fixture.conllu:1: multiword token ID '1-' is malformed"},
      {word("1-2-3", "ab") + w1, "fixture.conllu:1: multiword token ID '1-2-3' is malformed"},
      {word("0-1", "ab") + w1, "fixture.conllu:1: multiword token ID '0-1' is malformed"},
      {w1 + word("3-4", "cd"), "fixture.conllu:2: multiword token 3-4 does not start at the next word (2)"},
      {word("1-2", "ab") + word("1-3", "abc"), "fixture.conllu:2: multiword token 1-3 starts inside the multiword token ending at word 2"},
      {word("1-2", "ab") + w1 + word("2-3", "bc"), "fixture.conllu:3: multiword token 2-3 starts inside the multiword token"},
      {word("1-3", "abc") + w1 + w2 + "\n", "fixture.conllu:1: the sentence ends at line 3 after word 2, inside this multiword token"},
      {word("1-2", "ab") + w1, "fixture.conllu:1: the sentence ends at line 2 after word 1, inside this multiword token"},
      {w1 + word("1.x", "e"), "fixture.conllu:2: empty node ID '1.x' is malformed"},
      {w1 + word("1.0", "e"), "fixture.conllu:2: empty node ID '1.0' is malformed"},
      {w1 + word("2.1", "e") + w2, "fixture.conllu:2: empty node 2.1 does not follow word 2 (the last word is 1)"},
      {w1 + "# late\n", "fixture.conllu:2: comment line after the sentence's word lines"},
      {"# sent_id = a\n# only comments\n\n" + w1, "fixture.conllu:1: the sentence starting here has no words (ends at line 2)"},
      {w1 + "\n# sent_id = x\n", "fixture.conllu:3: the sentence starting here has no words (ends at line 3)"},
      {word("1-2", "ab") + "\n", "fixture.conllu:1: the sentence starting here has no words (ends at line 1)"},
      {"0.1\te\te\tX\tX\t_\t_\t_\t_\t_\n\n", "fixture.conllu:1: the sentence starting here has no words"},
      {"# sent_id = a\n# sent_id = b\n" + w1, "fixture.conllu:2: a second sent_id in one sentence (the first: 'a')"},
      {w1 + word("2", "b\xC3"), "fixture.conllu:2: ill-formed UTF-8 at byte 4 of the line"},
      {w1 + word("2", "\xED\xA0\x80"), "fixture.conllu:2: ill-formed UTF-8 at byte 3"},      // a surrogate
      {word("1", "\xC0\xAF"), "fixture.conllu:1: ill-formed UTF-8 at byte 3"},               // overlong
      {"# text = \xFF\n" + w1, "fixture.conllu:1: ill-formed UTF-8 at byte 10 of the line"},  // comments too
      {"\xEF\xBB\xBF\xEF\xBB" + w1, "fixture.conllu:1: ill-formed UTF-8 at byte 1"},          // a BOM cut short
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const std::string got = parse_error(c.text);
    CHECK_MESSAGE(got.find(c.message) == 0, got);
  }
  // U+FFFD written as such is well-formed, and so is a BOM inside a line (U+FEFF).
  CHECK(parse_error(word("1", "\xEF\xBF\xBD") + word("2", "\xEF\xBB\xBFx")) == "(no error)");

  // read_conllu names the path.
  temp_dir dir;
  const auto path = dir.write("bad.conllu", w1 + w1);
  CHECK(error_of([&] { read_conllu(path); }).find(path.string() + ":2: word ID 1 where 2 was expected") == 0);
  CHECK_THROWS_WITH_AS(read_conllu(dir / "absent.conllu"), doctest::Contains("absent.conllu: cannot open"), error);
}

TEST_CASE("conllu: tag sets are sorted, and an unknown tag names its file and line") {
  const auto train = parse_conllu("# sent_id = t1\n" + word("1", "b", "VERB", "VB") + word("2", "a", "NOUN", "NN") +
                                      "\n" + word("1", "c", "ADJ", "JJ") + word("2", "d", "NOUN", "NNS"),
                                  "train.conllu");
  const auto upos = make_tag_set(train, tag_column::upos);
  CHECK(upos.column == tag_column::upos);
  CHECK(upos.tags == std::vector<std::string>{"ADJ", "NOUN", "VERB"});
  CHECK(upos.size() == 3);
  CHECK(upos.id("NOUN") == 1);
  CHECK(upos.id("PRON") == -1);
  CHECK(upos.id("") == -1);
  const auto xpos = make_tag_set(train, tag_column::xpos);
  CHECK(xpos.tags == std::vector<std::string>{"JJ", "NN", "NNS", "VB"});
  CHECK(upos.word_labels(train[0], "train.conllu") == std::vector<int32_t>{2, 1});
  CHECK(xpos.word_labels(train[1], "train.conllu") == std::vector<int32_t>{0, 2});

  const auto dev = parse_conllu(word("1", "e", "NOUN", "NN") + word("2", "f", "PRON", "PRP"), "dev.conllu");
  CHECK(error_of([&] { upos.word_labels(dev[0], "dev.conllu"); }) ==
        "dev.conllu:2: UPOS tag 'PRON' of word 'f' is not in the tag set (3 tags, from the training data)");
  CHECK(error_of([&] { xpos.word_labels(dev[0], "dev.conllu"); }).find("dev.conllu:2: XPOS tag 'PRP'") == 0);

  CHECK_THROWS_WITH_AS(make_tag_set({}, tag_column::upos), doctest::Contains("no words"), error);
  CHECK(tag_column_named("UPOS") == tag_column::upos);
  CHECK(tag_column_named("xpos") == tag_column::xpos);
  CHECK_THROWS_WITH_AS(tag_column_named("deprel"), doctest::Contains("unknown tag column 'deprel'"), error);
  CHECK(tag_column_name(tag_column::xpos) == "XPOS");
}

TEST_CASE("conllu: the word-alignment goldens' dev sentences are read_conllu's words") {
  if (!fs::exists(ewt("dev"))) {
    MESSAGE("skipped: " << ewt("dev").string() << " is missing (set BITFIT_DATA_DIR)");
    return;
  }
  std::map<std::string, std::vector<std::string>> forms;
  for (const auto& s : read_conllu(ewt("dev"))) forms[s.id] = word_forms(s);
  std::ifstream in(bitfit::test::golden_dir() / "word_alignment_goldens.json", std::ios::binary);
  REQUIRE(in.good());
  const auto golden = nlohmann::json::parse(in);
  std::size_t n = 0;
  for (const auto& s : golden.at("sentences")) {
    if (!s.contains("sent_id")) continue;  // the hand-made word lists
    const auto id = s.at("sent_id").get<std::string>();
    CAPTURE(id);
    REQUIRE(forms.count(id) == 1);
    CHECK(forms[id] == s.at("words").get<std::vector<std::string>>());
    ++n;
  }
  CHECK(n == 200);
}
