// The BERT tokenizer against BertTokenizerFast: every SST-2 / RTE / MRPC dev input (with the model's
// uncased vocabulary and with Google's bert-base-cased one), the hand-made and random inputs in
// four configurations, invalid UTF-8 (goldens from tools/goldens/make_tokenizer_goldens.py), plus
// framing, truncation and configuration loading; pre-split words (encode_words) against
// BertTokenizerFast's is_split_into_words word_ids on UD English-EWT dev sentences
// (tools/goldens/make_word_alignment_goldens.py).
#include <bitfit/text/bert_tokenizer.hpp>

#include <doctest/doctest.h>

#include "test_support.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using bitfit::bert_tokenizer;
using bitfit::encoding;
using bitfit::test::error_of;
using bitfit::test::temp_dir;
using ids = std::vector<int32_t>;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(bool(in), "cannot open " << p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t b = 0;
  for (std::size_t e; (e = s.find(sep, b)) != std::string_view::npos; b = e + 1) out.emplace_back(s.substr(b, e - b));
  out.emplace_back(s.substr(b));
  return out;
}

/// Non-empty lines of a TSV file, split on tabs; a leading UTF-8 BOM is dropped.
std::vector<std::vector<std::string>> read_tsv(const fs::path& p) {
  std::string text = read_file(p);
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : split(text, '\n'))
    if (!line.empty()) rows.push_back(split(line, '\t'));
  return rows;
}

std::string unhex(const std::string& h) {
  REQUIRE(h.size() % 2 == 0);
  std::string out;
  for (std::size_t i = 0; i < h.size(); i += 2) out += char(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

ids parse_ids(const std::string& s) {
  ids out;
  for (const auto& x : split(s, ' '))
    if (!x.empty()) out.push_back(int32_t(std::stol(x)));
  return out;
}

std::string fnv1a64(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string show(const ids& v) {
  std::string s;
  for (const auto x : v) {
    if (!s.empty()) s += ' ';
    s += std::to_string(x);
  }
  return s;
}

ids type_ids(std::size_t n, std::size_t type0) {
  ids t(n, 1);
  std::fill_n(t.begin(), std::min(n, type0), 0);
  return t;
}

const bert_tokenizer& model_tokenizer() {
  static const auto tok = bert_tokenizer::from_dir(bitfit::test::model_dir());
  return tok;
}

/// The configurations of the golden files, on the model's vocabulary.
const bert_tokenizer& golden_tokenizer(const std::string& name) {
  static const std::map<std::string, bert_tokenizer> all = [] {
    const auto vocab = bitfit::wordpiece::from_file(bitfit::test::model_dir() / "vocab.txt");
    std::map<std::string, bert_tokenizer> m;
    m.emplace("uncased", bert_tokenizer(vocab, {.lower_case = true}));
    m.emplace("cased", bert_tokenizer(vocab, {.lower_case = false}));
    m.emplace("cased_strip", bert_tokenizer(vocab, {.lower_case = false, .strip_accents = true}));
    m.emplace("uncased_keep", bert_tokenizer(vocab, {.lower_case = true, .strip_accents = false}));
    return m;
  }();
  const auto it = all.find(name);
  REQUIRE_MESSAGE(it != all.end(), "unknown configuration " << name);
  return it->second;
}

/// Checks every row of hand_made.tsv / invalid_utf8.tsv; returns {rows, identical}.
std::pair<std::size_t, std::size_t> check_hand_made(const std::string& file) {
  const auto rows = read_tsv(bitfit::test::golden_dir() / "tokenizer" / file);
  REQUIRE(rows.size() > 1);
  REQUIRE(rows[0] == std::vector<std::string>{"name", "config", "max_length", "a_hex", "b_hex", "type0", "ids", "slow_ids"});
  std::size_t n = 0, same = 0;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const auto& f = rows[r];
    REQUIRE(f.size() == 8);
    const auto& tok = golden_tokenizer(f[1]);
    const int max_length = std::stoi(f[2]);
    const std::string a = unhex(f[3]), b = unhex(f[4]);
    // The reference called tok(a, b) only when the b column is not empty.
    const encoding got = f[4].empty() ? tok.encode(a, max_length) : tok.encode_pair(a, b, max_length);
    const ids want = parse_ids(f[6]);
    const ids want_types = type_ids(want.size(), std::stoul(f[5]));
    ++n;
    if (got.input_ids == want && got.token_type_ids == want_types) {
      ++same;
    } else {
      INFO(file << " " << f[0] << " " << f[1] << " max_length " << max_length);
      CHECK(show(got.input_ids) == show(want));
      CHECK(show(got.token_type_ids) == show(want_types));
    }
  }
  return {n, same};
}


/// Checks every row of a GLUE dev golden (glue_dev*.tsv) with `tok`: every SST-2 dev sentence and
/// RTE / MRPC dev pair must be there and give the same ids and token types.
void check_glue_dev(const std::string& file, const bert_tokenizer& tok, const std::string& what) {
  const auto golden = read_tsv(bitfit::test::golden_dir() / "tokenizer" / file);
  REQUIRE(golden.size() > 1);
  REQUIRE(golden[0] == std::vector<std::string>{"task", "row", "fnv1a64", "type0", "ids"});
  struct source {
    const char* folder;
    const char* col_a;
    const char* col_b;  // nullptr: single sentences
    std::vector<std::vector<std::string>> rows;
    std::size_t ia = 0, ib = 0;
  };
  std::map<std::string, source> tasks{{"sst2", {"SST-2", "sentence", nullptr, {}}},
                                      {"rte", {"RTE", "sentence1", "sentence2", {}}},
                                      {"mrpc", {"MRPC", "#1 String", "#2 String", {}}}};
  for (auto& [name, s] : tasks) {
    s.rows = read_tsv(bitfit::test::data_dir() / "glue" / s.folder / "dev.tsv");
    REQUIRE(!s.rows.empty());
    const auto& header = s.rows[0];
    const auto col = [&](const char* c) {
      const auto it = std::find(header.begin(), header.end(), c);
      REQUIRE_MESSAGE(it != header.end(), s.folder << "/dev.tsv has no column " << c);
      return std::size_t(it - header.begin());
    };
    s.ia = col(s.col_a);
    if (s.col_b) s.ib = col(s.col_b);
  }
  std::map<std::string, std::pair<std::size_t, std::size_t>> counts;  // rows, identical
  for (std::size_t r = 1; r < golden.size(); ++r) {
    const auto& g = golden[r];
    REQUIRE(g.size() == 5);
    auto& s = tasks.at(g[0]);
    const std::size_t row = std::stoul(g[1]) + 1;  // + header
    REQUIRE(row < s.rows.size());
    const auto& fields = s.rows[row];
    const std::string a = fields.at(s.ia), b = s.col_b ? fields.at(s.ib) : "";
    REQUIRE_MESSAGE(fnv1a64(a + '\x1f' + b) == g[2], g[0] << " row " << g[1] << ": the GLUE text is not the one of the golden");
    const encoding got = s.col_b ? tok.encode_pair(a, b, 128) : tok.encode(a, 128);
    const ids want = parse_ids(g[4]);
    const ids want_types = type_ids(want.size(), std::stoul(g[3]));
    auto& [n, same] = counts[g[0]];
    ++n;
    if (got.input_ids == want && got.token_type_ids == want_types) {
      ++same;
    } else {
      INFO(file << " " << g[0] << " row " << g[1]);
      CHECK(show(got.input_ids) == show(want));
      CHECK(show(got.token_type_ids) == show(want_types));
    }
  }
  for (const auto& [name, s] : tasks) {
    const auto [n, same] = counts[name];
    CHECK(n == s.rows.size() - 1);  // every dev row has a golden
    CHECK(same == n);
    MESSAGE(what << " " << name << " dev: " << same << "/" << n << " identical");
  }
}

/// Google's bert-base-cased vocabulary (scripts/fetch-model bert-base-cased), as BertTokenizerFast
/// builds it from vocab.txt with do_lower_case=False (strip_accents unset: accents kept).
const bert_tokenizer& cased_base_tokenizer() {
  static const auto tok = [] {
    const auto vocab = fs::path(BITFIT_MODELS_ROOT) / "bert-base-cased" / "vocab.txt";
    REQUIRE_MESSAGE(fs::exists(vocab), vocab.string() << " is missing: run scripts/fetch-model bert-base-cased");
    return bert_tokenizer(bitfit::wordpiece::from_file(vocab), {.lower_case = false});
  }();
  return tok;
}

}  // namespace

TEST_CASE("bert tokenizer: every SST-2, RTE and MRPC dev input matches BertTokenizerFast") {
  check_glue_dev("glue_dev.tsv", model_tokenizer(), "uncased");
}

TEST_CASE("bert tokenizer: every SST-2, RTE and MRPC dev input matches BertTokenizerFast, bert-base-cased vocab") {
  const auto& tok = cased_base_tokenizer();
  CHECK(tok.vocab_size() == 28996);
  CHECK(tok.pad_id() == 0);
  CHECK(tok.unk_id() == 100);
  CHECK(tok.cls_id() == 101);
  CHECK(tok.sep_id() == 102);
  CHECK(tok.mask_id() == 103);
  CHECK(!tok.basic().options().lower_case);
  CHECK(!tok.basic().strips_accents());
  CHECK(tok.token_to_id("Hello") >= 0);
  CHECK(tok.encode("Hello World", 128).input_ids == ids{101, tok.token_to_id("Hello"), tok.token_to_id("World"), 102});
  check_glue_dev("glue_dev_cased.tsv", tok, "cased");
}

TEST_CASE("bert tokenizer: hand-made and random inputs match BertTokenizerFast in 4 configurations") {
  const auto [n, same] = check_hand_made("hand_made.tsv");
  CHECK(same == n);
  MESSAGE("hand-made + random: " << same << "/" << n << " identical");
}

TEST_CASE("bert tokenizer: invalid UTF-8 matches BertTokenizerFast on errors='replace' text") {
  const auto [n, same] = check_hand_made("invalid_utf8.tsv");
  CHECK(same == n);
  MESSAGE("invalid UTF-8: " << same << "/" << n << " identical");
}

TEST_CASE("bert tokenizer: the model's special tokens and vocabulary") {
  const auto& tok = model_tokenizer();
  CHECK(tok.vocab_size() == 30522);
  CHECK(tok.pad_id() == 0);
  CHECK(tok.unk_id() == 100);
  CHECK(tok.cls_id() == 101);
  CHECK(tok.sep_id() == 102);
  CHECK(tok.mask_id() == 103);
  CHECK(tok.token_to_id("hello") == 7592);
  CHECK(tok.token_to_id("Hello") == -1);
  CHECK(tok.basic().options().lower_case);
  CHECK(tok.basic().strips_accents());
  CHECK(tok.tokenize("Hello, unaffable world!") == std::vector<std::string>{"hello", ",", "una", "##ffa", "##ble", "world", "!"});
  CHECK(tok.tokenize("a [MASK] b[SEP]") == std::vector<std::string>{"a", "[MASK]", "b", "[SEP]"});
  CHECK(tok.tokenize("[mask]") == std::vector<std::string>{"[", "mask", "]"});  // case-sensitive
  CHECK(tok.token_ids("[MASK][MASK]") == ids{103, 103});
  CHECK(tok.tokenize("").empty());
}

TEST_CASE("bert tokenizer: framing and token types") {
  const auto& tok = model_tokenizer();
  const auto single = tok.encode("hello world", 128);
  CHECK(single.input_ids == ids{101, 7592, 2088, 102});
  CHECK(single.token_type_ids == ids{0, 0, 0, 0});
  const auto pair = tok.encode_pair("hello", "world", 128);
  CHECK(pair.input_ids == ids{101, 7592, 102, 2088, 102});
  CHECK(pair.token_type_ids == ids{0, 0, 0, 1, 1});
  CHECK(tok.encode("", 128).input_ids == ids{101, 102});
  CHECK(tok.encode_pair("", "world", 128).input_ids == ids{101, 102, 2088, 102});
  CHECK(tok.encode_pair("hello", " ", 128).input_ids == ids{101, 7592, 102, 102});  // blank b: still a pair
  // An empty b is no pair at all, as in BertTokenizerFast.
  CHECK(tok.encode_pair("hello", "", 128).input_ids == tok.encode("hello", 128).input_ids);
}

TEST_CASE("bert tokenizer: truncation lengths") {
  using bitfit::detail::longest_first_lengths;
  using lengths = std::pair<std::size_t, std::size_t>;
  // The table of tokenizers' own test (truncate_encodings_longest_first, max_length 7).
  const std::size_t sizes[] = {0, 2, 4, 8};
  const lengths expected[4][4] = {{{0, 0}, {0, 2}, {0, 4}, {0, 7}},
                                  {{2, 0}, {2, 2}, {2, 4}, {2, 5}},
                                  {{4, 0}, {4, 2}, {3, 4}, {3, 4}},
                                  {{7, 0}, {5, 2}, {4, 3}, {3, 4}}};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) CHECK(longest_first_lengths(sizes[i], sizes[j], 7) == expected[i][j]);
  CHECK(longest_first_lengths(10, 10, 13) == lengths{6, 7});  // tie: the second gets the odd place
  CHECK(longest_first_lengths(15, 16, 13) == lengths{6, 7});
  CHECK(longest_first_lengths(16, 15, 13) == lengths{7, 6});
  CHECK(longest_first_lengths(100, 3, 125) == lengths{100, 3});
  CHECK(longest_first_lengths(100, 30, 125) == lengths{95, 30});
  CHECK(longest_first_lengths(5, 5, 0) == lengths{0, 0});

  const auto& tok = model_tokenizer();
  std::string text;
  for (int i = 0; i < 300; ++i) text += "word ";
  for (const int max_length : {2, 3, 16, 128, 301, 302}) {
    const auto e = tok.encode(text, max_length);
    CHECK(e.input_ids.size() == std::size_t(max_length));
    CHECK(e.input_ids.front() == 101);
    CHECK(e.input_ids.back() == 102);
    CHECK(e.token_type_ids.size() == e.input_ids.size());
  }
  CHECK(tok.encode(text, 303).input_ids.size() == 302);
  CHECK(tok.encode(text, 512).input_ids.size() == 302);
  for (const int max_length : {3, 4, 16, 128}) {
    const auto e = tok.encode_pair(text, text, max_length);
    CHECK(e.input_ids.size() == std::size_t(max_length));
    const auto [na, nb] = longest_first_lengths(300, 300, std::size_t(max_length) - 3);
    CHECK(std::count(e.token_type_ids.begin(), e.token_type_ids.end(), 0) == std::ptrdiff_t(na + 2));
    CHECK(std::count(e.token_type_ids.begin(), e.token_type_ids.end(), 1) == std::ptrdiff_t(nb + 1));
  }
  const auto msg = error_of([&] { tok.encode("x", 1); });
  CHECK(msg.find("max_length 1") != std::string::npos);
  CHECK_THROWS_AS(tok.encode_pair("x", "y", 2), bitfit::error);
  CHECK_THROWS_AS(tok.encode_pair("x", "", 2), bitfit::error);
}

TEST_CASE("bert tokenizer: tokenizer_config.json") {
  temp_dir dir;
  dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nHello\ncafé\ncafe\n<s>\n");
  SUBCASE("absent: Hugging Face defaults (lowercase, strip accents)") {
    const auto tok = bert_tokenizer::from_dir(dir.path);
    CHECK(tok.tokenize("Hello Café") == std::vector<std::string>{"hello", "cafe"});
    CHECK(tok.cls_id() == 2);
    CHECK(tok.vocab_size() == 10);
  }
  SUBCASE("cased") {
    dir.write("tokenizer_config.json", R"({"do_lower_case": false, "strip_accents": null})");
    CHECK(bert_tokenizer::from_dir(dir.path).tokenize("Hello Café") == std::vector<std::string>{"Hello", "[UNK]"});
  }
  SUBCASE("lowercase but keep accents") {
    dir.write("tokenizer_config.json", R"({"do_lower_case": true, "strip_accents": false})");
    CHECK(bert_tokenizer::from_dir(dir.path).tokenize("Hello Café") == std::vector<std::string>{"hello", "café"});
  }
  SUBCASE("special tokens as strings or objects") {
    dir.write("tokenizer_config.json",
              R"({"cls_token": {"content": "<s>", "lstrip": false}, "mask_token": "hello", "tokenize_chinese_chars": false})");
    const auto tok = bert_tokenizer::from_dir(dir.path);
    CHECK(tok.cls_id() == 9);
    CHECK(tok.mask_id() == 5);
    CHECK(tok.encode("x", 8).input_ids == ids{9, 1, 3});
    CHECK(!tok.basic().options().tokenize_chinese_chars);
  }
  SUBCASE("invalid JSON is an error naming the file") {
    dir.write("tokenizer_config.json", "{\"do_lower_case\": tru");
    const auto msg = error_of([&] { bert_tokenizer::from_dir(dir.path); });
    CHECK(msg.find((dir.path / "tokenizer_config.json").string()) != std::string::npos);
  }
  SUBCASE("wrong types are errors naming the file and key") {
    dir.write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
    auto msg = error_of([&] { bert_tokenizer::from_dir(dir.path); });
    CHECK(msg.find("tokenizer_config.json") != std::string::npos);
    CHECK(msg.find("do_lower_case") != std::string::npos);
    dir.write("tokenizer_config.json", R"({"strip_accents": 1})");
    CHECK(error_of([&] { bert_tokenizer::from_dir(dir.path); }).find("strip_accents") != std::string::npos);
    dir.write("tokenizer_config.json", R"({"sep_token": 5})");
    CHECK(error_of([&] { bert_tokenizer::from_dir(dir.path); }).find("sep_token") != std::string::npos);
    dir.write("tokenizer_config.json", "[1, 2]");
    CHECK(error_of([&] { bert_tokenizer::from_dir(dir.path); }).find("JSON object") != std::string::npos);
  }
  SUBCASE("a special token missing from the vocabulary is an error naming vocab.txt") {
    dir.write("tokenizer_config.json", R"({"mask_token": "<mask>"})");
    const auto msg = error_of([&] { bert_tokenizer::from_dir(dir.path); });
    CHECK(msg.find("vocab.txt") != std::string::npos);
    CHECK(msg.find("<mask>") != std::string::npos);
  }
  SUBCASE("a missing vocab.txt is an error naming it") {
    fs::remove(dir.path / "vocab.txt");
    const auto msg = error_of([&] { bert_tokenizer::from_dir(dir.path); });
    CHECK(msg.find((dir.path / "vocab.txt").string()) != std::string::npos);
  }
}

TEST_CASE("bert tokenizer: arbitrary bytes never fail") {
  const auto& tok = model_tokenizer();
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(std::size_t(rng() % 64), '\0');
    for (auto& c : s) c = char(rng() % 256);
    const auto e = tok.encode_pair(s, s.substr(0, s.size() / 2), 32);
    CHECK(e.input_ids.size() <= 32);
    for (const auto id : e.input_ids) CHECK((id >= 0 && id < tok.vocab_size()));
  }
}

// Issue #7, hostile input: inputs on which an earlier version took time quadratic in their length
// (special tokens were searched for from each match to the end of the text), each with its result
// checked. The timeouts only guard against the quadratic paths coming back.
namespace {

/// `unit` repeated to at most `bytes` bytes (whole units).
std::string repeated(std::string_view unit, std::size_t bytes) {
  std::string s;
  s.reserve(bytes);
  while (s.size() + unit.size() <= bytes) s += unit;
  return s;
}

constexpr std::size_t hostile_bytes = std::size_t(4) << 20;
constexpr std::size_t long_bytes = std::size_t(1) << 20;  // for inputs that were linear already

/// encode and encode_pair truncate the ids of the whole texts as BertTokenizerFast does, although
/// they stop reading a text once its kept ids are known.
void check_truncation(const bert_tokenizer& tok, std::string_view a, std::string_view b) {
  const ids all_a = tok.token_ids(a), all_b = tok.token_ids(b);
  for (const int max_length : {2, 3, 4, 7, 8, 128, 129}) {
    ids want{tok.cls_id()};
    want.insert(want.end(), all_a.begin(), all_a.begin() + std::ptrdiff_t(std::min(all_a.size(), std::size_t(max_length) - 2)));
    want.push_back(tok.sep_id());
    CHECK(tok.encode(a, max_length).input_ids == want);
    if (max_length < 3 || b.empty()) continue;
    const auto [n_a, n_b] = bitfit::detail::longest_first_lengths(all_a.size(), all_b.size(), std::size_t(max_length) - 3);
    want.assign({tok.cls_id()});
    want.insert(want.end(), all_a.begin(), all_a.begin() + std::ptrdiff_t(n_a));
    want.push_back(tok.sep_id());
    want.insert(want.end(), all_b.begin(), all_b.begin() + std::ptrdiff_t(n_b));
    want.push_back(tok.sep_id());
    INFO("max_length " << max_length << ", lengths " << all_a.size() << " and " << all_b.size());
    CHECK(tok.encode_pair(a, b, max_length).input_ids == want);
  }
}

}  // namespace

TEST_CASE("bert tokenizer: special tokens in the text, 4 MB of them" * doctest::timeout(120)) {
  const auto& tok = model_tokenizer();
  // Small: the ids against ids put together by hand, and truncation against the full ids.
  const std::string unit = "a[SEP]b[UNK][[MASK]]x[CLS ";
  ids unit_ids = tok.token_ids("a");
  unit_ids.push_back(tok.sep_id());
  for (const int32_t id : tok.token_ids("b")) unit_ids.push_back(id);
  unit_ids.push_back(tok.unk_id());
  for (const int32_t id : tok.token_ids("[")) unit_ids.push_back(id);
  unit_ids.push_back(tok.mask_id());
  for (const int32_t id : tok.token_ids("]x[CLS ")) unit_ids.push_back(id);
  const std::string small = repeated(unit, 2048);
  ids want;
  for (std::size_t i = 0; i < small.size() / unit.size(); ++i) want.insert(want.end(), unit_ids.begin(), unit_ids.end());
  CHECK(tok.token_ids(small) == want);
  CHECK(tok.token_ids(repeated("[SEP]", 2048)) == ids(2045 / 5, tok.sep_id()));
  check_truncation(tok, small, repeated("[SEP]", 2048));
  check_truncation(tok, repeated("[SEP]", 2048), small);

  const std::string seps = repeated("[SEP]", hostile_bytes);
  CHECK(tok.token_ids(seps) == ids(seps.size() / 5, tok.sep_id()));
  ids framed(128, tok.sep_id());
  framed[0] = tok.cls_id();
  CHECK(tok.encode(seps, 128).input_ids == framed);
  CHECK(tok.encode_pair(seps, seps, 128).input_ids == framed);
  CHECK(tok.token_ids(repeated("[SEP", hostile_bytes)).size() == hostile_bytes / 4 * 2);  // "[", "sep"
}

TEST_CASE("bert tokenizer: 4 MB of one word, of one-letter words, of marks; punctuation, CJK, spaces, bad bytes" *
          doctest::timeout(120)) {
  const auto& tok = model_tokenizer();
  const int32_t a = tok.token_to_id("a"), bang = tok.token_to_id("!"), zhong = tok.token_to_id("\u4e2d");
  REQUIRE((a >= 0 && bang >= 0 && zhong >= 0));

  // More than max_input_chars_per_word (100) characters: [UNK], as in HF.
  CHECK(tok.token_ids(repeated("a", hostile_bytes)) == ids{tok.unk_id()});
  CHECK(tok.encode(repeated("a", hostile_bytes), 128).input_ids == ids{tok.cls_id(), tok.unk_id(), tok.sep_id()});

  const std::string words = repeated("a ", hostile_bytes);
  CHECK(tok.token_ids(words) == ids(hostile_bytes / 2, a));
  ids framed(128, a);
  framed.front() = tok.cls_id();
  framed.back() = tok.sep_id();
  CHECK(tok.encode(words, 128).input_ids == framed);
  // Both texts longer than the budget (125, odd): the longer one gets the 63rd place, the second
  // one on a tie, so each text is read until the shorter one ends.
  const auto pair_split = [&](std::string_view x, std::string_view y) {
    const auto types = tok.encode_pair(x, y, 128).token_type_ids;
    return std::pair{std::count(types.begin(), types.end(), 0) - 2, std::count(types.begin(), types.end(), 1) - 1};
  };
  const std::string some_words = repeated("a ", long_bytes);
  CHECK(pair_split(some_words, some_words) == std::pair<std::ptrdiff_t, std::ptrdiff_t>{62, 63});
  CHECK(pair_split(some_words + "a", some_words) == std::pair<std::ptrdiff_t, std::ptrdiff_t>{63, 62});
  CHECK(pair_split(some_words, some_words + "a") == std::pair<std::ptrdiff_t, std::ptrdiff_t>{62, 63});
  CHECK(pair_split(words, "a a") == std::pair<std::ptrdiff_t, std::ptrdiff_t>{123, 2});
  check_truncation(tok, repeated("a ", 2048), repeated("a ", 2050));
  check_truncation(tok, repeated("a ", 2050), repeated("a ", 2048));

  // Alternating combining marks of classes 230 and 220 between two letters: stripped (uncased),
  // kept in a word too long for WordPiece (cased).
  const std::string marks = "a" + repeated("\u0301\u0316", hostile_bytes) + "b";
  CHECK(tok.token_ids(marks) == tok.token_ids("ab"));
  CHECK(golden_tokenizer("cased").token_ids(marks) == ids{tok.unk_id()});
  CHECK(golden_tokenizer("cased_strip").token_ids(repeated("a\u0301\u0316\u0301\u0316", hostile_bytes)) == ids{tok.unk_id()});

  CHECK(tok.token_ids(repeated("!", long_bytes)) == ids(long_bytes, bang));
  CHECK(tok.token_ids(repeated("\u4e2d", long_bytes)) == ids(long_bytes / 3, zhong));
  CHECK(tok.token_ids(repeated(" ", long_bytes)).empty());
  CHECK(tok.token_ids(repeated("\xff", long_bytes)).empty());
  CHECK(tok.token_ids(repeated("\xe4\xb8", long_bytes)).empty());  // truncated sequences
  CHECK(tok.encode(repeated(" ", hostile_bytes) + "a", 128).input_ids == ids{tok.cls_id(), a, tok.sep_id()});
}

namespace {

/// HF's encoding of `words` with the tokens of words [kept, n) removed: what encode_words keeps
/// (HF keeps the first pieces of the word at the cut, encode_words drops that word whole).
std::pair<ids, ids> whole_words(const ids& hf_ids, const ids& hf_word_ids, int32_t kept) {
  std::pair<ids, ids> out;
  for (std::size_t t = 0; t < hf_ids.size(); ++t) {
    if (hf_word_ids[t] >= kept) continue;
    out.first.push_back(hf_ids[t]);
    out.second.push_back(hf_word_ids[t]);
  }
  return out;
}

}  // namespace

TEST_CASE("bert tokenizer: encode_words matches BertTokenizerFast is_split_into_words on UD English-EWT dev") {
  const auto golden = nlohmann::json::parse(read_file(bitfit::test::golden_dir() / "word_alignment_goldens.json"));
  const auto& sentences = golden.at("sentences");
  REQUIRE(sentences.size() > 200);
  const int cut = golden.at("meta").at("cut_max_length").get<int>();
  const int full = golden.at("meta").at("max_length").get<int>();
  REQUIRE(cut == 32);
  for (const std::string model : {"bert-base-cased", "all-MiniLM-L6-v2"}) {
    CAPTURE(model);
    const auto dir = fs::path(BITFIT_MODELS_ROOT) / model;
    REQUIRE_MESSAGE(fs::exists(dir / "vocab.txt"), dir.string() << " is missing: run scripts/fetch-model " << model);
    const auto tok = bert_tokenizer::from_dir(dir);
    const auto& rows = golden.at("models").at(model);
    REQUIRE(rows.size() == sentences.size());
    std::size_t same = 0, cut_rows = 0, partial = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto words = sentences[i].at("words").get<std::vector<std::string>>();
      const auto& row = rows[i];
      INFO("input " << i << " " << sentences[i].value("sent_id", sentences[i].value("name", "")));
      const auto want_ids = row.at("ids").get<ids>(), want_word_ids = row.at("word_ids").get<ids>();
      const auto kept = row.at("kept").get<std::size_t>();

      const auto whole = tok.encode_words(words, full);  // nothing is cut at 512
      CHECK(show(whole.input_ids) == show(want_ids));
      CHECK(show(whole.word_ids) == show(want_word_ids));
      CHECK(whole.token_type_ids == ids(want_ids.size(), 0));
      CHECK(whole.words_kept == words.size());
      CHECK(whole.truncated_words == 0);

      // At 32: HF's cut encoding without the tokens of the word cut in two (if any).
      const bool is_cut = row.contains("cut_ids");
      const auto hf_ids = is_cut ? row.at("cut_ids").get<ids>() : want_ids;
      const auto hf_word_ids = is_cut ? row.at("cut_word_ids").get<ids>() : want_word_ids;
      const auto [cut_ids, cut_word_ids] = whole_words(hf_ids, hf_word_ids, int32_t(kept));
      partial += cut_ids.size() < hf_ids.size();
      cut_rows += is_cut;
      const auto got = tok.encode_words(words, cut);
      CHECK(got.input_ids.size() <= std::size_t(cut));
      CHECK(show(got.input_ids) == show(cut_ids));
      CHECK(show(got.word_ids) == show(cut_word_ids));
      CHECK(got.words_kept == kept);
      CHECK(got.truncated_words == words.size() - kept);
      same += whole.input_ids == want_ids && whole.word_ids == want_word_ids && got.input_ids == cut_ids &&
              got.word_ids == cut_word_ids && got.words_kept == kept;
    }
    CHECK(same == rows.size());
    CHECK(cut_rows >= 40);  // the goldens do exercise the cut ...
    CHECK(partial >= 20);   // ... and the one difference: HF keeps part of a word, encode_words drops it
    MESSAGE(model << ": " << same << "/" << rows.size() << " inputs identical (" << cut_rows << " cut at " << cut
                  << ", " << partial << " of them inside a word, which encode_words drops whole)");
  }
}

TEST_CASE("bert tokenizer: encode_words keeps whole words, counts the ones it drops, reads only what it keeps") {
  const auto& tok = model_tokenizer();
  const int32_t a = tok.token_to_id("a"), b = tok.token_to_id("b");
  using words = std::vector<std::string>;
  auto e = tok.encode_words(words{"a", "b"}, 128);
  CHECK(e.input_ids == ids{101, a, b, 102});
  CHECK(e.word_ids == ids{-1, 0, 1, -1});
  CHECK(e.token_type_ids == ids{0, 0, 0, 0});
  // A word is its own text: "a b" (a space inside) is two basic words with one word id; "[SEP]"
  // is the special token, as in HF; a word of only spaces or controls has no token.
  e = tok.encode_words(words{"a b", "", "\u200b", "[SEP]", " ", "a"}, 128);
  CHECK(e.input_ids == ids{101, a, b, 102, a, 102});
  CHECK(e.word_ids == ids{-1, 0, 0, 3, 5, -1});
  CHECK(e.words_kept == 6);
  // The cut: "unaffable" is three pieces; with room for two ids it is dropped whole, and the
  // words after it are counted too. A word without tokens always fits, even in no room at all.
  const auto una = tok.token_ids("unaffable");
  REQUIRE(una.size() == 3);
  e = tok.encode_words(words{"a", "unaffable", "b"}, 5);
  CHECK(e.input_ids == ids{101, a, 102});
  CHECK(e.word_ids == ids{-1, 0, -1});
  CHECK(e.words_kept == 1);
  CHECK(e.truncated_words == 2);
  e = tok.encode_words(words{"a", "unaffable", "b"}, 6);
  CHECK(e.word_ids == ids{-1, 0, 1, 1, 1, -1});
  CHECK(e.truncated_words == 1);
  e = tok.encode_words(words{"", "a"}, 2);
  CHECK(e.input_ids == ids{101, 102});
  CHECK(e.words_kept == 1);
  CHECK(e.truncated_words == 1);
  e = tok.encode_words(words{}, 2);
  CHECK(e.input_ids == ids{101, 102});
  CHECK(e.truncated_words == 0);
  CHECK(error_of([&] { tok.encode_words(words{"a"}, 1); }).find("max_length 1") != std::string::npos);
  // 4 MB in one word: read only as far as the 127 ids that show it does not fit in 126.
  const words huge{"a", repeated("a ", hostile_bytes)};
  e = tok.encode_words(huge, 128);
  CHECK(e.input_ids == ids{101, a, 102});
  CHECK(e.truncated_words == 1);
}
