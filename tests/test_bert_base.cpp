// Google's BERT-base (uncased and cased), loaded natively from its TF checkpoint and from the HF
// directory that `bitfit convert` made of it (both laid out by scripts/fetch-model), against
// references nobody here wrote: Google's own graph run by TensorFlow (tanh GELU) and HF
// transformers (erf GELU). Goldens: tests/data/bert_base, from tools/goldens/make_bert_base_goldens.py.
#include "encoder_goldens.hpp"
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/model/convert.hpp>
#include <bitfit/model/encoder.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

namespace fs = std::filesystem;
using bitfit::test::encoder_goldens;
using bitfit::test::max_abs_diff;

namespace {

const char* const model_names[] = {"bert-base-uncased", "bert-base-cased"};

fs::path hf_dir(const std::string& name) { return fs::path(BITFIT_MODELS_ROOT) / name; }
fs::path tf_dir(const std::string& name) { return fs::path(BITFIT_MODELS_ROOT) / (name + "-tf"); }

/// Runs `params` on every golden input; checks [CLS], the last hidden state and the pooler
/// against `reference` within 1e-4 and prints the worst differences.
void check_parity(const bitfit::bert_params<float>& params, const std::string& name, const std::string& reference) {
  const auto dir = bitfit::test::golden_dir() / "bert_base" / name;
  const encoder_goldens g(dir, dir / reference);
  REQUIRE(g.size() >= 30);
  const int H = params.config.hidden_size;
  const auto batch = g.batch();
  bitfit::encoder_state<float> st;
  bitfit::encoder_forward(st, params, batch, bitfit::no_grad{});
  const double e_hidden = max_abs_diff(st.last_hidden, g.hidden.data(), std::size_t(batch.tokens()) * H);
  const double e_cls = max_abs_diff(st.cls.data(), g.cls.data(), g.size() * H);
  const double e_pooler = max_abs_diff(st.pooled.data(), g.pooler.data(), g.size() * H);
  std::printf("%s vs %s (%s, %zu inputs, %d tokens): max abs diff hidden %.3g cls %.3g pooler %.3g\n", name.c_str(),
              reference.c_str(), params.config.hidden_act.c_str(), g.size(), batch.tokens(), e_hidden, e_cls, e_pooler);
  CHECK(e_hidden <= 1e-4);
  CHECK(e_cls <= 1e-4);
  CHECK(e_pooler <= 1e-4);
}

}  // namespace

TEST_CASE("BERT-base from its TF checkpoint matches Google's graph run by TensorFlow (tanh GELU)") {
  for (const std::string name : model_names) {
    CAPTURE(name);
    REQUIRE(bitfit::locate_model(tf_dir(name)).format == bitfit::model_format::tf_saved_model);
    auto params = bitfit::load_bert_params<float>(tf_dir(name));
    params.config.hidden_act = "gelu_new";  // Google's graph; HF's reading of these weights is "gelu"
    check_parity(params, name, "tf");
  }
}

TEST_CASE("BERT-base from the converted HF directory matches HF transformers (erf GELU)") {
  for (const std::string name : model_names) {
    CAPTURE(name);
    REQUIRE(bitfit::locate_model(hf_dir(name)).format == bitfit::model_format::hf);
    const auto params = bitfit::load_bert_params<float>(hf_dir(name));
    CHECK(params.config.hidden_act == "gelu");
    check_parity(params, name, "hf");
  }
}

TEST_CASE("TF checkpoint and converted directory: same config, same backbone identity, same tokens") {
  for (const std::string name : model_names) {
    CAPTURE(name);
    const auto tf = bitfit::load_bert_params<float>(tf_dir(name));
    const auto hf = bitfit::load_bert_params<float>(hf_dir(name));
    // The SavedModel has no config: it is inferred from the tensor shapes (A = H / 64).
    const auto& a = tf.config;
    const auto& b = hf.config;
    CHECK(a.hidden_size == 768);
    CHECK(a.num_hidden_layers == 12);
    CHECK(a.num_attention_heads == 12);
    CHECK(a.intermediate_size == 3072);
    CHECK(a.vocab_size == (name == "bert-base-cased" ? 28996 : 30522));
    CHECK(a.vocab_size == b.vocab_size);
    CHECK(a.max_position_embeddings == b.max_position_embeddings);
    CHECK(a.type_vocab_size == b.type_vocab_size);
    CHECK(a.hidden_act == b.hidden_act);
    CHECK(bitfit::backbone_id(tf) == bitfit::backbone_id(hf));

    // The tokenizer: casing from the SavedModel's model.json vs the converted tokenizer_config.json.
    const auto dir = bitfit::test::golden_dir() / "bert_base" / name;
    const encoder_goldens g(dir, dir / "hf");
    const auto tok_tf = bitfit::load_tokenizer(tf_dir(name));
    const auto tok_hf = bitfit::load_tokenizer(hf_dir(name));
    CHECK(tok_tf.basic().options().lower_case == (name == "bert-base-uncased"));
    CHECK(tok_hf.basic().options().lower_case == (name == "bert-base-uncased"));
    const auto probe = "Héllo, Wörld! 東京 is [MASK] big";
    CHECK(tok_tf.encode(probe, 64).input_ids == tok_hf.encode(probe, 64).input_ids);
  }
}

TEST_CASE("a changed value changes the backbone identity; a copy keeps it") {
  auto p = bitfit::load_bert_params<float>(hf_dir("bert-base-uncased"));
  const auto id = bitfit::backbone_id(p);
  CHECK(id.size() == 64);
  auto q = p;
  CHECK(bitfit::backbone_id(q) == id);
  q.layers[11].Wm3[123] = std::nextafter(q.layers[11].Wm3[123], 1.0f);  // one ulp of one weight
  CHECK(bitfit::backbone_id(q) != id);
}

TEST_CASE("bitfit convert of the TF checkpoint reproduces the fetched directory byte for byte") {
  const bitfit::test::temp_dir tmp;
  const auto out = tmp / "converted";
  bitfit::convert_to_hf(tf_dir("bert-base-cased"), out);
  for (const char* file : {"model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt"}) {
    CAPTURE(file);
    CHECK(bitfit::sha256_file(out / file) == bitfit::sha256_file(hf_dir("bert-base-cased") / file));
  }
  // A second conversion into the now non-empty directory is refused, and leaves it whole.
  const auto msg = bitfit::test::error_of([&] { bitfit::convert_to_hf(tf_dir("bert-base-cased"), out); });
  CHECK(msg.find("already exists") != std::string::npos);
  CHECK(fs::exists(out / "model.safetensors"));
}
