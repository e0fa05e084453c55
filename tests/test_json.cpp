// Untrusted JSON: the nesting bound of parse_json_bounded() (64 levels pass, 65 and a million do
// not, and nothing crashes), capped error messages, json_excerpt() on any value, parse_json_file(),
// and the JSON files of tokenizers and SavedModels read through them.
#include "test_support.hpp"

#include <bitfit/core/json.hpp>
#include <bitfit/model/checkpoint.hpp>
#include <bitfit/text/bert_tokenizer.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <filesystem>
#include <string>

using bitfit::json_excerpt;
using bitfit::parse_json_bounded;
using bitfit::test::error_of;
using bitfit::test::temp_dir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// `depth` nested arrays: "[[...]]".
std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

/// `depth` nested objects: {"a":{"a":...{}}}.
std::string nested_objects(std::size_t depth) {
  std::string s;
  for (std::size_t i = 1; i < depth; ++i) s += "{\"a\":";
  return s + "{}" + std::string(depth - 1, '}');
}

/// A value `depth` arrays deep, built without the parser (and so without its bound).
json deep_value(std::size_t depth) {
  json v = json::array();
  json* inner = &v;
  for (std::size_t i = 1; i < depth; ++i) {
    inner->push_back(json::array());
    inner = &inner->back();
  }
  return v;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("json: 64 levels of nesting parse, 65 are refused naming the origin") {
  CHECK(parse_json_bounded(nested_arrays(64), "a.json").is_array());
  CHECK(parse_json_bounded(nested_objects(64), "a.json").is_object());
  CHECK(parse_json_bounded(R"({"k": [1, {"x": [2]}], "s": "[[[["})", "a.json")["k"][1]["x"][0] == 2);
  for (const auto& text : {nested_arrays(65), nested_objects(65), "{\"k\":" + nested_arrays(64) + "}"}) {
    const auto msg = error_of([&] { parse_json_bounded(text, "a.json"); });
    CHECK_MESSAGE(contains(msg, "a.json: JSON nested deeper than 64 levels"), msg);
  }
  CHECK(parse_json_bounded(nested_arrays(3), "a.json", 3).is_array());
  CHECK(contains(error_of([] { parse_json_bounded(nested_arrays(4), "a.json", 3); }), "deeper than 3 levels"));
}

TEST_CASE("json: a million levels of arrays or objects are refused without a crash") {
  for (const auto& text : {nested_arrays(1'000'000), nested_objects(1'000'000)}) {
    const auto msg = error_of([&] { parse_json_bounded(text, "deep.json"); });
    CHECK_MESSAGE(contains(msg, "deep.json: JSON nested deeper than 64 levels"), msg.substr(0, 300));
  }
}

TEST_CASE("json: invalid text, NUL bytes and parse errors give short messages naming the origin") {
  CHECK(contains(error_of([] { parse_json_bounded("{\"a\": nope", "a.json"); }), "a.json: not valid JSON"));
  CHECK(contains(error_of([] { parse_json_bounded("", "a.json"); }), "a.json: not valid JSON"));
  CHECK(contains(error_of([] { parse_json_bounded(std::string("{}\0{", 4), "a.json"); }), "NUL byte at offset 2"));
  // nlohmann quotes the token it stopped in; here a megabyte-long unterminated string.
  const auto msg = error_of([] { parse_json_bounded("[\"" + std::string(1'000'000, 'x'), "a.json"); });
  CHECK_MESSAGE(contains(msg, "a.json: not valid JSON"), msg.substr(0, 300));
  CHECK(msg.size() < 400);
}

TEST_CASE("json: the caller's parse callback still sees every event") {
  int keys = 0;
  const auto j = parse_json_bounded(R"({"a": 1, "b": {"c": 2}})", "a.json", bitfit::json_max_depth,
                                    [&](int, json::parse_event_t event, json&) {
                                      keys += event == json::parse_event_t::key;
                                      return true;
                                    });
  CHECK(keys == 3);
  CHECK(j["b"]["c"] == 2);
}

TEST_CASE("json: json_excerpt is the compact dump of short values and caps long or deep ones") {
  CHECK(json_excerpt(json::parse(R"({"a":[1,-2,3.5,true,null],"b":"x"})")) == R"({"a":[1,-2,3.5,true,null],"b":"x"})");
  CHECK(json_excerpt(json("roberta")) == "\"roberta\"");
  CHECK(json_excerpt(json(4294967680u)) == "4294967680");
  CHECK(json_excerpt(json::array()) == "[]");
  CHECK(json_excerpt(json::object()) == "{}");

  const auto long_string = json_excerpt(json(std::string(1'000'000, 'x')));
  CHECK(long_string.size() == 83);
  CHECK(long_string.ends_with("..."));
  CHECK(json_excerpt(json(std::string(1000, 'y')), 10) == "\"yyyyyyyyy...");
  CHECK(json_excerpt(json(std::vector<int>(1'000'000, 7))).size() == 83);
  CHECK(json_excerpt(json{{std::string(500, 'k'), 1}}).size() == 83);
  // Invalid UTF-8 is replaced, not thrown on (dump() would throw).
  CHECK(json_excerpt(json(std::string("a\xff" "b"))) == "\"a\xEF\xBF\xBD" "b\"");
  // A cut never splits a UTF-8 sequence: "é" is 2 bytes, the cut falls between them.
  CHECK(json_excerpt(json("\xC3\xA9\xC3\xA9\xC3\xA9"), 4) == "\"\xC3\xA9...");

  // dump() of this value recurses a million times; json_excerpt() reads 81 levels of it.
  const json deep = deep_value(1'000'000);
  CHECK(json_excerpt(deep) == std::string(80, '[') + "...");
}

TEST_CASE("json: parse_json_file names the file when it is missing, too big, deep or invalid") {
  temp_dir dir;
  CHECK(contains(error_of([&] { bitfit::parse_json_file(dir / "absent.json"); }), "absent.json: cannot open"));
  const auto big = dir / "big.json";
  dir.write("big.json", "{}");
  fs::resize_file(big, bitfit::json_max_file_bytes + 1);  // sparse: costs no disk space
  CHECK(contains(error_of([&] { bitfit::parse_json_file(big); }), "big.json: 67108865 bytes exceeds the limit"));
  dir.write("deep.json", nested_arrays(150'000));
  CHECK(contains(error_of([&] { bitfit::parse_json_file(dir / "deep.json"); }), "deep.json: JSON nested deeper"));
  dir.write("ok.json", R"({"do_lower_case": false})");
  CHECK(bitfit::parse_json_file(dir / "ok.json")["do_lower_case"] == false);
}

TEST_CASE("json: a tokenizer_config.json nested 150,000 deep is an error naming the file") {
  temp_dir dir;
  dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
  dir.write("tokenizer_config.json", R"({"do_lower_case": true, "added_tokens_decoder": )" + nested_arrays(150'000) + "}");
  const auto msg = error_of([&] { bitfit::bert_tokenizer::from_dir(dir.path); });
  CHECK_MESSAGE(contains(msg, (dir / "tokenizer_config.json").string() + ": JSON nested deeper than 64"), msg.substr(0, 300));
  dir.write("tokenizer_config.json", R"({"do_lower_case": true})");
  CHECK(bitfit::bert_tokenizer::from_dir(dir.path).tokenize("Hello") == std::vector<std::string>{"hello"});
}

TEST_CASE("json: a SavedModel's assets/model.json nested 150,000 deep is an error naming the file") {
  temp_dir dir;
  fs::create_directories(dir / "variables");
  fs::create_directories(dir / "assets");
  dir.write("variables/variables.index", "");
  dir.write("assets/vocab.txt", "[PAD]\n[UNK]\n");
  dir.write("assets/model.json", "{\"doLowerCase\": true, \"x\": " + nested_arrays(150'000) + "}");
  const auto msg = error_of([&] { bitfit::locate_model(dir.path); });
  CHECK_MESSAGE(contains(msg, (dir / "assets" / "model.json").string() + ": JSON nested deeper than 64"), msg.substr(0, 300));
  dir.write("assets/model.json", R"({"doLowerCase": false})");
  CHECK(bitfit::locate_model(dir.path).lower_case == false);
}
