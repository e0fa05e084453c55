// Merge (issue #10): backbone + patch as one standalone HF BertForSequenceClassification directory.
// Loading the merged directory must give exactly the patched parameters and head; its config
// carries the labels; a failed merge leaves nothing behind. (That HF transformers predicts the same
// is checked by scripts/check-merge against the real library, see docs/SERVING.md.)
#include "task_bank_fixture.hpp"

#include <bitfit/train/merge.hpp>

#include <doctest/doctest.h>

#include <fstream>

using namespace bitfit;
using bitfit::test::fixture;

TEST_CASE("merge: the merged directory holds exactly the patched model, with the task's labels") {
  fixture f;
  const auto patch = f.make_patch("rte.safetensors", "rte", {"entailment", "not_entailment"},
                                  runtime_mask{bitfit_bq_bm2::bits()}, 7);
  const auto out = f.dir / "merged";
  const auto info = merge_to_hf(test::model_dir(), patch, out);
  CHECK(info.task == "rte");

  sequence_classifier want{f.loaded.params, {}};
  apply_patch(patch, want.params, want.head, f.loaded.id);
  const auto got = load_bert_params<float>(out);
  for (const auto& e : want.params.layout.entries) {
    CAPTURE(e.name);
    const std::span<const float> a = want.params.tensor(e), b = got.tensor(e);
    REQUIRE(a.size() == b.size());
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
  }
  const safetensors_file file(out / "model.safetensors");
  const std::int64_t C = 2, H = want.params.config.hidden_size;
  const auto W = file.f32("classifier.weight", std::vector<std::int64_t>{C, H});
  const auto b = file.f32("classifier.bias", std::vector<std::int64_t>{C});
  CHECK(std::equal(W.begin(), W.end(), want.head.W.begin()));
  CHECK(std::equal(b.begin(), b.end(), want.head.b.begin()));

  nlohmann::json config = nlohmann::json::parse(std::ifstream(out / "config.json"));
  CHECK(config["architectures"][0] == "BertForSequenceClassification");
  CHECK(config["id2label"]["1"] == "not_entailment");
  CHECK(config["label2id"]["entailment"] == 0);
  CHECK(config["problem_type"] == "single_label_classification");
  CHECK(config["finetuning_task"] == "rte");
  CHECK(std::filesystem::exists(out / "vocab.txt"));
  CHECK(std::filesystem::exists(out / "tokenizer_config.json"));
}

TEST_CASE("merge: a regression head; refusals leave nothing behind") {
  fixture f;
  const auto stsb = f.make_patch("stsb.safetensors", "stsb", {}, runtime_mask{bitfit_all::bits()}, 8);
  const auto out = f.dir / "stsb";
  merge_to_hf(test::model_dir(), stsb, out);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(out / "config.json"));
  CHECK(config["problem_type"] == "regression");
  CHECK(config["id2label"].size() == 1);

  // The output exists: refused before anything is written.
  CHECK(test::error_of([&] { merge_to_hf(test::model_dir(), stsb, out); }).find("already exists") != std::string::npos);
  // A damaged patch: named, and no directory (not even a temporary one) is left.
  const auto bad = f.dir.write("bad.safetensors", "not a patch at all");
  const auto none = f.dir / "none";
  CHECK(test::error_of([&] { merge_to_hf(test::model_dir(), bad, none); }).find("bad.safetensors") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(none));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(f.dir.path)) ++entries;
  CHECK(entries == 3);  // stsb.safetensors, stsb/ and bad.safetensors: nothing of "none"
}

TEST_CASE("merge: a tagger becomes a BertForTokenClassification, without the pooler") {
  fixture f;
  const std::vector<std::string> tags = {"ADJ", "NOUN", "PUNCT", "VERB"};
  const auto pos = f.make_patch("pos.safetensors", "pos", tags, runtime_mask{bitfit_bq_bm2::bits()}, 9, /*per_token=*/true);
  const auto out = f.dir / "tagger";
  const auto info = merge_to_hf(test::model_dir(), pos, out);
  CHECK(info.per_token);

  sequence_classifier want{f.loaded.params, {}};
  apply_patch(pos, want.params, want.head, f.loaded.id);
  const safetensors_file file(out / "model.safetensors");
  for (const auto& e : want.params.layout.entries) {
    CAPTURE(e.name);
    if (e.name.starts_with("pooler.")) {
      CHECK_FALSE(file.contains("bert." + e.name));  // BertForTokenClassification has no pooler
      continue;
    }
    const auto got = file.f32("bert." + e.name, std::span<const std::int64_t>(e.shape));
    const std::span<const float> a = want.params.tensor(e);
    CHECK(std::equal(a.begin(), a.end(), got.begin(), got.end()));
  }
  const std::int64_t C = 4, H = want.params.config.hidden_size;
  const auto W = file.f32("classifier.weight", std::vector<std::int64_t>{C, H});
  CHECK(std::equal(W.begin(), W.end(), want.head.W.begin()));

  nlohmann::json config = nlohmann::json::parse(std::ifstream(out / "config.json"));
  CHECK(config["architectures"][0] == "BertForTokenClassification");
  CHECK(config["finetuning_task"] == "pos");
  CHECK(config["id2label"]["2"] == "PUNCT");
  CHECK(config["label2id"]["VERB"] == 3);
  CHECK_FALSE(config.contains("problem_type"));
}
