#include "test_support.hpp"

#include <bitfit/model/config.hpp>

#include <doctest/doctest.h>

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

TEST_CASE("a missing or malformed config file names the file") {
  CHECK_THROWS_WITH_AS(bitfit::load_bert_config("/nonexistent/dir/config.json"), doctest::Contains("cannot open"), bitfit::error);
}
