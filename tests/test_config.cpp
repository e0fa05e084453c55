#include "test_support.hpp"

#include <bitfit/model/config.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

using nlohmann::json;

TEST_CASE("the real model's config.json") {
  const auto c = bitfit::load_bert_config(bitfit::test::model_dir());
  CHECK(c.hidden_size == 384);
  CHECK(c.num_hidden_layers == 6);
  CHECK(c.num_attention_heads == 12);
  CHECK(c.intermediate_size == 1536);
  CHECK(c.vocab_size == 30522);
  CHECK(c.head_dim() == 32);
  CHECK(c.layer_norm_eps == doctest::Approx(1e-12));
}

TEST_CASE("unsupported or invalid configs are rejected with the field named") {
  auto base = json{{"hidden_size", 64}, {"num_attention_heads", 4}, {"num_hidden_layers", 2}, {"intermediate_size", 128}};
  CHECK_NOTHROW(bitfit::bert_config_from_json(base, "c.json"));
  auto expect = [](json j, const std::string& needle) {
    try {
      bitfit::bert_config_from_json(j, "c.json");
      FAIL("expected an error mentioning " << needle);
    } catch (const bitfit::error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("c.json") != std::string::npos);
      CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg);
    }
  };
  auto j = base; j["hidden_act"] = "relu"; expect(j, "hidden_act");
  j = base; j["hidden_act"] = "gelu_new";
  CHECK(bitfit::bert_config_from_json(j, "c.json").activation() == bitfit::gelu_kind::tanh);
  j = base; j["num_attention_heads"] = 5; expect(j, "divisible");
  j = base; j["hidden_size"] = -1; expect(j, "hidden_size");
  j = base; j["hidden_size"] = "big"; expect(j, "hidden_size");
  j = base; j["model_type"] = "roberta"; expect(j, "model_type");
  j = base; j["position_embedding_type"] = "relative_key"; expect(j, "position_embedding_type");
  j = base; j["layer_norm_eps"] = 0; expect(j, "layer_norm_eps");
  expect(json::array(), "object");
}

TEST_CASE("config: integers out of their type's range, non-integers and bad numerics are refused, not truncated") {
  auto base = json{{"hidden_size", 64}, {"num_attention_heads", 4}, {"num_hidden_layers", 2}, {"intermediate_size", 128}};
  auto expect = [](json j, const std::string& needle) {
    const auto msg = bitfit::test::error_of([&] { bitfit::bert_config_from_json(j, "c.json"); });
    CHECK_MESSAGE(msg.find("c.json") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg);
  };
  // 4294967680 = 2^32 + 384: get<int>() kept the low 32 bits and read it as 384.
  auto j = base; j["hidden_size"] = 4294967680u; expect(j, "'hidden_size' is out of range, got 4294967680");
  j = base; j["hidden_size"] = 2147483648u; expect(j, "'hidden_size' is out of range");
  j = base; j["vocab_size"] = std::numeric_limits<std::uint64_t>::max(); expect(j, "'vocab_size' is out of range");
  j = base; j["num_hidden_layers"] = std::int64_t(-4294967294); expect(j, "'num_hidden_layers' is out of range");
  j = base; j["intermediate_size"] = 128.0; expect(j, "'intermediate_size' must be an integer, got 128.0");
  j = base; j["type_vocab_size"] = true; expect(j, "'type_vocab_size' must be an integer");
  j = base; j["max_position_embeddings"] = 0; expect(j, "max_position_embeddings must be positive");
  j = base; j["pad_token_id"] = 30522; expect(j, "pad_token_id 30522 is not in [-1, vocab_size 30522)");
  j = base; j["pad_token_id"] = -2; expect(j, "pad_token_id");
  j = base; j["pad_token_id"] = -1; CHECK(bitfit::bert_config_from_json(j, "c.json").pad_token_id == -1);
  j = base; j["layer_norm_eps"] = std::numeric_limits<double>::infinity(); expect(j, "layer_norm_eps must be finite");
  j = base; j["layer_norm_eps"] = -1e-12; expect(j, "layer_norm_eps");
  j = base; j["layer_norm_eps"] = "1e-12"; expect(j, "'layer_norm_eps' must be a number");
  j = base; j["hidden_act"] = std::string(100'000, 'g'); expect(j, "hidden_act");
  CHECK(bitfit::test::error_of([&] { bitfit::bert_config_from_json(j, "c.json"); }).size() < 200);
  // Values are quoted in messages only as short excerpts.
  j = base; j["model_type"] = std::string(1'000'000, 'r');
  CHECK(bitfit::test::error_of([&] { bitfit::bert_config_from_json(j, "c.json"); }).size() < 200);
  // The maxima of int are accepted by the parser (then judged by validate()).
  j = base; j["max_position_embeddings"] = std::numeric_limits<int>::max();
  CHECK(bitfit::bert_config_from_json(j, "c.json").max_position_embeddings == std::numeric_limits<int>::max());
}

TEST_CASE("config: a config.json with model_type nested 150,000 deep is an error naming the file, not a crash") {
  bitfit::test::temp_dir dir;
  const std::string deep = std::string(150'000, '[') + std::string(150'000, ']');
  dir.write("config.json", R"({"hidden_size": 64, "num_attention_heads": 4, "model_type": )" + deep + "}");
  auto msg = bitfit::test::error_of([&] { bitfit::load_bert_config(dir.path); });
  CHECK_MESSAGE(msg.find((dir / "config.json").string() + ": JSON nested deeper than 64 levels") != std::string::npos,
                msg.substr(0, 300));
  dir.write("config.json", R"({"position_embedding_type": )" + deep + "}");
  msg = bitfit::test::error_of([&] { bitfit::load_bert_config(dir.path); });
  CHECK_MESSAGE(msg.find("config.json: JSON nested deeper") != std::string::npos, msg.substr(0, 300));
  // A file with a value out of range names the file and the key.
  dir.write("config.json", R"({"hidden_size": 4294967680, "num_attention_heads": 12})");
  msg = bitfit::test::error_of([&] { bitfit::load_bert_config(dir.path); });
  CHECK_MESSAGE(msg.find((dir / "config.json").string() + ": field 'hidden_size' is out of range") != std::string::npos, msg);
  dir.write("config.json", R"({"layer_norm_eps": 1e400})");  // nlohmann refuses it rather than read inf
  msg = bitfit::test::error_of([&] { bitfit::load_bert_config(dir.path); });
  CHECK_MESSAGE(msg.find("config.json: not valid JSON") != std::string::npos, msg);
  dir.write("config.json", "{\"hidden_size\": 64,");
  CHECK(bitfit::test::error_of([&] { bitfit::load_bert_config(dir.path); }).find("config.json: not valid JSON") !=
        std::string::npos);
}

TEST_CASE("a missing or malformed config file names the file") {
  CHECK_THROWS_WITH_AS(bitfit::load_bert_config("/nonexistent/dir/config.json"), doctest::Contains("cannot open"), bitfit::error);
}
