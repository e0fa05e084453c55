#pragma once
/// @file config.hpp
/// BERT hyper-parameters read from a Hugging Face `config.json`.

#include <bitfit/core/error.hpp>
#include <bitfit/core/json.hpp>
#include <bitfit/ops/gelu.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

namespace bitfit {

/// Shape and numerics of a BERT encoder. Dimension names follow the house style:
/// H hidden, A heads, I intermediate, L layers, V vocabulary, P positions.
struct bert_config {
  int hidden_size = 768;               // H
  int num_hidden_layers = 12;          // L
  int num_attention_heads = 12;        // A
  int intermediate_size = 3072;        // I
  int vocab_size = 30522;              // V
  int max_position_embeddings = 512;   // P
  int type_vocab_size = 2;
  int pad_token_id = 0;                // its word-embedding row gets no gradient (as HF)
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";     // "gelu" (erf), "gelu_new" / "gelu_pytorch_tanh" (tanh)

  int head_dim() const { return hidden_size / num_attention_heads; }
  /// The MLP's GELU form, from `hidden_act` (validated).
  gelu_kind activation() const { return parse_gelu_kind(hidden_act, "config"); }

  /// Throws `bitfit::error` naming `origin` when a value is out of range or unsupported.
  void validate(const std::string& origin = "config") const {
    auto positive = [&](int v, const char* name) {
      check(v > 0, origin + ": " + name + " must be positive, got " + std::to_string(v));
    };
    positive(hidden_size, "hidden_size");
    positive(num_hidden_layers, "num_hidden_layers");
    positive(num_attention_heads, "num_attention_heads");
    positive(intermediate_size, "intermediate_size");
    positive(vocab_size, "vocab_size");
    positive(max_position_embeddings, "max_position_embeddings");
    positive(type_vocab_size, "type_vocab_size");
    check(hidden_size % num_attention_heads == 0,
          origin + ": hidden_size " + std::to_string(hidden_size) +
              " is not divisible by num_attention_heads " + std::to_string(num_attention_heads));
    check(std::isfinite(layer_norm_eps) && layer_norm_eps > 0, origin + ": layer_norm_eps must be finite and positive");
    // -1: no padding row (see embedding_backward); any other id must be a row of the vocabulary.
    check(pad_token_id >= -1 && pad_token_id < vocab_size,
          origin + ": pad_token_id " + std::to_string(pad_token_id) + " is not in [-1, vocab_size " +
              std::to_string(vocab_size) + ")");
    parse_gelu_kind(hidden_act, origin);
  }
};

/// Parses the fields of a `config.json` object; unknown fields are ignored. Values come from
/// files, so none is converted unchecked and messages quote them only through json_excerpt().
inline bert_config bert_config_from_json(const nlohmann::json& j, const std::string& origin) {
  bert_config c;
  auto get_int = [&](const char* key, int& out) {
    if (!j.contains(key)) return;
    const auto& v = j[key];
    // Integers only (768.0 is a float to nlohmann, and a sign of a hand-edited file), and within
    // int: get<int>() would silently keep the low 32 bits (4294967680 -> 384).
    check(v.is_number_integer(), origin + ": field '" + key + "' must be an integer, got " + json_excerpt(v));
    const bool fits = v.is_number_unsigned()
                          ? v.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<int>::max())
                          : v.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                v.get<std::int64_t>() <= std::numeric_limits<int>::max();
    check(fits, origin + ": field '" + key + "' is out of range, got " + json_excerpt(v));
    out = v.get<int>();
  };
  check(j.is_object(), origin + ": top level must be a JSON object");
  if (j.contains("model_type")) {
    check(j["model_type"].is_string() && j["model_type"] == "bert",
          origin + ": model_type must be 'bert', got " + json_excerpt(j["model_type"]));
  }
  get_int("hidden_size", c.hidden_size);
  get_int("num_hidden_layers", c.num_hidden_layers);
  get_int("num_attention_heads", c.num_attention_heads);
  get_int("intermediate_size", c.intermediate_size);
  get_int("vocab_size", c.vocab_size);
  get_int("max_position_embeddings", c.max_position_embeddings);
  get_int("type_vocab_size", c.type_vocab_size);
  get_int("pad_token_id", c.pad_token_id);
  if (j.contains("layer_norm_eps")) {
    check(j["layer_norm_eps"].is_number(),
          origin + ": field 'layer_norm_eps' must be a number, got " + json_excerpt(j["layer_norm_eps"]));
    c.layer_norm_eps = j["layer_norm_eps"].get<double>();
  }
  if (j.contains("hidden_act")) {
    check(j["hidden_act"].is_string(), origin + ": field 'hidden_act' must be a string");
    c.hidden_act = j["hidden_act"].get<std::string>();
    check(c.hidden_act.size() <= 64,  // no valid name is long; keeps the "not supported" message short
          origin + ": hidden_act " + json_excerpt(j["hidden_act"]) + " is not supported");
  }
  if (j.contains("position_embedding_type") && j["position_embedding_type"].is_string()) {
    check(j["position_embedding_type"] == "absolute",
          origin + ": position_embedding_type " + json_excerpt(j["position_embedding_type"]) +
              " is not supported (only 'absolute')");
  }
  c.validate(origin);
  return c;
}

/// Reads `<dir>/config.json` (or the file itself when given a file).
inline bert_config load_bert_config(const std::filesystem::path& path) {
  auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  return bert_config_from_json(parse_json_file(file), file.string());
}

}  // namespace bitfit
