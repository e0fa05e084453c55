#pragma once
/// @file convert.hpp
/// Writes any supported BERT (see checkpoint.hpp) as a standard Hugging Face directory:
/// config.json, vocab.txt, tokenizer_config.json and model.safetensors with the tensor names of
/// HF's `bert-base-uncased` ("bert." + encoder and pooler). HF's `BertModel` loads it with no
/// missing and no unexpected keys. With the MLM head ("cls.predictions.*", mlm_head option) it is
/// a `BertForMaskedLM` checkpoint instead, which has no pooler: HF then reports the pooler as
/// unused. Google's checkpoints as published on Maven have no NSP head, so neither class can
/// take both without a report.
/// train/merge.hpp writes a backbone with a patch applied as a BertForSequenceClassification.

#include <bitfit/core/atomic_file.hpp>
#include <bitfit/model/checkpoint.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace bitfit {

/// Options of convert_to_hf().
struct convert_options {
  std::string hidden_act;  ///< written to config.json; empty: the source's ("gelu", the erf form, for TF)
  bool mlm_head = false;   ///< also write the masked-LM head (an error if the source has none)
};

namespace detail {

/// The MLM head's tensors in HF naming and layout, if the source has the whole head, else empty.
/// TF names: cls/predictions/transform/{dense/kernel,dense/bias,LayerNorm/gamma,LayerNorm/beta},
/// cls/predictions/output_bias. The decoder weight is tied to the word embeddings (not stored).
struct named_tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};
inline std::vector<named_tensor> read_mlm_head(const model_files& m, const bert_config& c) {
  const std::int64_t H = c.hidden_size, V = c.vocab_size;
  std::vector<named_tensor> head = {{"cls.predictions.transform.dense.weight", {H, H}, {}},
                                    {"cls.predictions.transform.dense.bias", {H}, {}},
                                    {"cls.predictions.transform.LayerNorm.weight", {H}, {}},
                                    {"cls.predictions.transform.LayerNorm.bias", {H}, {}},
                                    {"cls.predictions.bias", {V}, {}}};
  if (m.format == model_format::hf) {
    const safetensors_file f(m.weights);
    for (const auto& t : head)
      if (!f.contains(t.name)) return {};
    for (auto& t : head) {
      const auto src = f.f32(t.name, std::span<const std::int64_t>(t.shape));
      t.data.assign(src.begin(), src.end());
    }
    return head;
  }
  const tf_checkpoint ckpt(m.weights);
  const std::string scope = tf_scope(ckpt);
  for (auto& t : head) {
    // cls.predictions.bias is TF's output_bias; the rest follow the encoder's naming rule.
    const std::string hf = t.name == "cls.predictions.bias" ? "cls.predictions.output_bias" : t.name;
    if (!ckpt.find(scope + tf_name_of(hf).name)) return {};
    t.data = read_tf_tensor(ckpt, scope, hf, t.shape);
  }
  return head;
}

/// config.json as HF writes it for bert-base-uncased.
inline nlohmann::ordered_json hf_config_json(const bert_config& c, bool with_mlm_head) {
  return {{"architectures", {with_mlm_head ? "BertForMaskedLM" : "BertModel"}},
          {"attention_probs_dropout_prob", 0.1},
          {"hidden_act", c.hidden_act},
          {"hidden_dropout_prob", 0.1},
          {"hidden_size", c.hidden_size},
          {"initializer_range", 0.02},
          {"intermediate_size", c.intermediate_size},
          {"layer_norm_eps", c.layer_norm_eps},
          {"max_position_embeddings", c.max_position_embeddings},
          {"model_type", "bert"},
          {"num_attention_heads", c.num_attention_heads},
          {"num_hidden_layers", c.num_hidden_layers},
          {"pad_token_id", c.pad_token_id},
          {"position_embedding_type", "absolute"},
          {"type_vocab_size", c.type_vocab_size},
          {"vocab_size", c.vocab_size}};
}

}  // namespace detail

namespace detail {

/// Writes an HF directory at `dst` (which must not exist or be empty): model.safetensors with
/// `tensors`, `config`, the source's vocabulary and tokenizer configuration. Everything goes into
/// a temporary sibling directory renamed to `dst` at the end, so `dst` is whole or absent.
inline void write_hf_directory(const std::filesystem::path& dst, const model_files& m, const bert_tokenizer& tok,
                               const std::vector<tensor_to_write>& tensors, const nlohmann::ordered_json& config) {
  namespace fs = std::filesystem;
  const fs::path tmp = temp_path_for(dst);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  check(!ec, tmp.string() + ": cannot create (" + ec.message() + ")");
  try {
    write_safetensors(tmp / "model.safetensors", tensors, {{"format", "pt"}});
    write_file_atomic(tmp / "config.json", config.dump(2) + "\n");
    write_file_atomic(tmp / "vocab.txt", read_file(m.vocab));
    if (!m.tokenizer_config.empty()) {
      write_file_atomic(tmp / "tokenizer_config.json", read_file(m.tokenizer_config));
    } else {  // what load_tokenizer() decided (casing from model.json or from the vocabulary)
      const auto& o = tok.basic().options();
      const nlohmann::ordered_json tokenizer_config = {{"do_lower_case", o.lower_case},
                                                       {"model_max_length", config["max_position_embeddings"]},
                                                       {"tokenizer_class", "BertTokenizer"}};
      write_file_atomic(tmp / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  if (fs::exists(dst)) fs::remove(dst);  // an empty directory (checked by the callers)
  publish_file(tmp, dst);
}

inline void check_output_dir(const std::filesystem::path& dst) {
  namespace fs = std::filesystem;
  check(!fs::exists(dst) || (fs::is_directory(dst) && fs::is_empty(dst)),
        dst.string() + ": already exists and is not an empty directory (remove it or choose another --output)");
}

/// The encoder and pooler of `p` under HF's names ("bert." + layout name).
inline std::vector<tensor_to_write> bert_tensors(const bert_params<float>& p) {
  std::vector<tensor_to_write> tensors;
  for (const auto& e : p.layout.entries) tensors.push_back({"bert." + e.name, e.shape, p.tensor(e)});
  return tensors;
}

}  // namespace detail

/// Converts the model at `src` (HF directory, TF SavedModel or bert_model.ckpt prefix) into the HF
/// directory `dst`, which must not exist or be empty; `dst` is whole or absent.
inline void convert_to_hf(const std::filesystem::path& src, const std::filesystem::path& dst,
                          const convert_options& options = {}) {
  detail::check_output_dir(dst);
  const auto m = locate_model(src);
  const auto tok = load_tokenizer(src);  // validates the vocabulary before anything is written
  auto params = load_bert_params<float>(src);
  if (!options.hidden_act.empty()) {
    parse_gelu_kind(options.hidden_act, "--hidden-act");
    params.config.hidden_act = options.hidden_act;
  }
  std::vector<detail::named_tensor> head;
  if (options.mlm_head) {
    head = detail::read_mlm_head(m, params.config);
    check(!head.empty(), src.string() + ": has no (complete) masked-LM head (cls/predictions/...) to convert");
  }
  auto tensors = detail::bert_tensors(params);
  for (const auto& t : head) tensors.push_back({t.name, t.shape, t.data});
  detail::write_hf_directory(dst, m, tok, tensors, detail::hf_config_json(params.config, !head.empty()));
}

}  // namespace bitfit
