// Google's BERT-base (uncased and cased), loaded natively from its TF checkpoint and from the HF
// directory that `bitfit convert` made of it (both laid out by scripts/fetch-model), against
// references nobody here wrote: Google's own graph run by TensorFlow (tanh GELU) and HF
// transformers (erf GELU). Goldens: tests/data/bert_base, from tools/goldens/make_bert_base_goldens.py.
#include "encoder_goldens.hpp"
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/model/convert.hpp>
#include <bitfit/model/encoder.hpp>
#include <bitfit/train/patch.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

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

namespace {

/// Google's release-zip layout (bert_model.ckpt.{index,data-*}, bert_config.json, vocab.txt)
/// made of a fetched SavedModel by symbolic links, with Google's own bert_config.json fields.
fs::path google_release_layout(const fs::path& dir, const std::string& name) {
  fs::create_directories(dir);
  const auto vars = tf_dir(name) / "variables";
  fs::create_symlink(fs::absolute(vars / "variables.index"), dir / "bert_model.ckpt.index");
  fs::create_symlink(fs::absolute(vars / "variables.data-00000-of-00001"), dir / "bert_model.ckpt.data-00000-of-00001");
  fs::create_symlink(fs::absolute(tf_dir(name) / "assets" / "vocab.txt"), dir / "vocab.txt");
  const int V = name == "bert-base-cased" ? 28996 : 30522;
  std::ofstream(dir / "bert_config.json")
      << R"({"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
             "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
             "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12,
             "type_vocab_size": 2, "vocab_size": )"
      << V << "}\n";
  return dir;
}

}  // namespace

TEST_CASE("a Google release checkpoint loads by prefix or folder, casing from its vocabulary") {
  const bitfit::test::temp_dir tmp;
  for (const std::string name : model_names) {
    CAPTURE(name);
    const auto dir = google_release_layout(tmp / name, name);
    for (const auto& path : {dir / "bert_model.ckpt", dir}) {
      CAPTURE(path);
      CHECK(bitfit::locate_model(path).format == bitfit::model_format::tf_checkpoint);
      CHECK(bitfit::load_model_config(path).vocab_size == (name == "bert-base-cased" ? 28996 : 30522));
      // No tokenizer_config.json and no model.json: an uncased vocabulary has no capitals.
      CHECK(bitfit::load_tokenizer(path).basic().options().lower_case == (name == "bert-base-uncased"));
    }
    CHECK(bitfit::backbone_id(bitfit::load_bert_params<float>(dir)) ==
          bitfit::backbone_id(bitfit::load_bert_params<float>(hf_dir(name))));
  }
  SUBCASE("without bert_config.json the error names it") {
    const auto dir = google_release_layout(tmp / "no-config", "bert-base-uncased");
    fs::remove(dir / "bert_config.json");
    CHECK(bitfit::test::error_of([&] { bitfit::locate_model(dir / "bert_model.ckpt"); }).find("bert_config.json: not found") !=
          std::string::npos);
  }
  SUBCASE("a folder that holds no model is named") {
    const auto msg = bitfit::test::error_of([&] { bitfit::locate_model(tmp.path); });
    CHECK(msg.find(tmp.path.string() + ": not a BERT model") != std::string::npos);
  }
}

TEST_CASE("a patch trained on the TF checkpoint applies to its converted directory, not to another backbone") {
  auto tf = bitfit::load_bert_params<float>(tf_dir("bert-base-uncased"));
  auto hf = bitfit::load_bert_params<float>(hf_dir("bert-base-uncased"));
  std::vector<const bitfit::param_entry*> entries;
  for (const auto& e : tf.layout.entries)
    if (e.is_bias) entries.push_back(&e);
  const auto pretrained_id = bitfit::backbone_id(tf);  // what training starts from, as `bitfit train` does
  for (std::size_t i = 0; i < tf.layout.bias_size; ++i) tf.data[i] += 0.01f * float(i % 7);  // "trained"
  bitfit::patch_info info;
  info.task = "sst2";
  info.fine_tune_type = "bitfit";
  info.bias_terms = "all";
  info.backbone_id = pretrained_id;
  info.labels = {"0", "1"};
  const bitfit::test::temp_dir tmp;
  const auto head = bitfit::task_head<float>::init(2, 768, 7);
  bitfit::save_patch(tmp / "patch.safetensors", tf, entries, head, info);

  bitfit::task_head<float> got;
  bitfit::apply_patch(tmp / "patch.safetensors", hf, got, bitfit::backbone_id(hf));
  CHECK(std::equal(tf.biases().begin(), tf.biases().end(), hf.biases().begin()));
  CHECK(got.W == head.W);

  auto cased = bitfit::load_bert_params<float>(hf_dir("bert-base-cased"));
  const auto msg = bitfit::test::error_of(
      [&] { bitfit::apply_patch(tmp / "patch.safetensors", cased, got, bitfit::backbone_id(cased)); });
  CHECK(msg.find("patch was trained on backbone " + info.backbone_id) != std::string::npos);
}
