// The task bank (issue #10): K patches over one backbone, one forward over a batch that mixes
// their tasks. Each sequence's outputs must be bit-identical (fp32, oneDNN, same thread count) to
// those of its patch served alone, whatever it is batched with, and to predict_logits (training's
// evaluation and `bitfit predict`).
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/serve/task_bank.hpp>
#include <bitfit/text/bert_tokenizer.hpp>
#include <bitfit/train/trainer.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

using namespace bitfit;
namespace fs = std::filesystem;

namespace {

struct fixture {
  backbone loaded = load_backbone(test::model_dir());
  std::shared_ptr<const bert_params<float>> shared = std::make_shared<const bert_params<float>>(loaded.params);
  bert_tokenizer tok = load_tokenizer(test::model_dir());
  test::temp_dir dir;

  /// A patch of task `task` whose trained terms (`terms`) are the backbone's plus noise, and a
  /// head of `labels.size()` outputs (1, regression, when empty).
  fs::path make_patch(const std::string& file, const std::string& task, std::vector<std::string> labels,
                      const runtime_mask& terms, unsigned seed) const {
    bert_params<float> p = loaded.params;
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    std::vector<const param_entry*> entries;
    for (const auto& e : p.layout.entries) {
      if (!e.is_bias || !terms.trains(e.bias_term)) continue;
      for (auto& v : p.tensor(e)) v += noise(rng);
      entries.push_back(&e);
    }
    const int C = labels.empty() ? 1 : int(labels.size());
    auto head = task_head<float>::init(C, p.config.hidden_size, seed);
    patch_info info;
    info.task = task, info.fine_tune_type = "bitfit", info.bias_terms = bias_terms_string(terms);
    info.backbone_id = loaded.id, info.labels = std::move(labels), info.num_labels = C;
    const auto path = dir / file;
    save_patch(path, p, entries, head, info);
    return path;
  }

  /// Logits of `texts` in one batch, from a bank that holds `patch` alone.
  std::vector<float> alone(const fs::path& patch, const std::vector<std::string>& texts) const {
    task_bank bank(shared, loaded.id);
    bank.load("t", patch);
    std::vector<task_input> xs;
    for (const auto& t : texts) {
      const auto enc = tok.encode(t, 64);
      xs.push_back({"t", enc.input_ids, enc.token_type_ids});
    }
    encoder_state<float> st;
    std::vector<float> out;
    for (const auto& o : bank.classify(xs, st)) out.insert(out.end(), o.logits.begin(), o.logits.end());
    return out;
  }

  /// The same through sequence_classifier and predict_logits (the training code's forward).
  std::vector<float> model(const fs::path& patch, const std::vector<std::string>& texts) const {
    sequence_classifier m{loaded.params, {}};
    apply_patch(patch, m.params, m.head, loaded.id);
    token_batch batch;
    for (const auto& t : texts) {
      const auto enc = tok.encode(t, 64);
      batch.add(enc.input_ids, enc.token_type_ids);
    }
    encoder_state<float> st;
    return predict_logits(m, batch, st);
  }
};

const std::vector<std::string> sentences = {
    "a gripping, funny and deeply moving film .",
    "the plot is thin and the jokes fall flat",
    "it 's a movie .",
    "an utterly charming and hilarious film that reaches across the generations and never lets go",
    "worst of the year",
    "the cast is uniformly excellent , but the script lets them down at every turn",
    "no .",
};

}  // namespace

TEST_CASE("task bank: a mixed batch gives each sequence exactly its own patch's outputs") {
  fixture f;
  const auto all = runtime_mask{bitfit_all::bits()};
  const auto bq_bm2 = runtime_mask{bitfit_bq_bm2::bits()};
  const auto sst2 = f.make_patch("sst2.safetensors", "sst2", {"0", "1"}, all, 1);
  const auto rte = f.make_patch("rte.safetensors", "rte", {"entailment", "not_entailment"}, bq_bm2, 2);
  const auto stsb = f.make_patch("stsb.safetensors", "stsb", {}, all, 3);
  task_bank bank(f.shared, f.loaded.id);
  bank.load("sst2", sst2), bank.load("rte", rte), bank.load("stsb", stsb);
  CHECK(bank.tasks().size() == 3);

  // Interleaved: every task appears several times, in no particular order.
  const std::vector<std::string> order = {"rte", "sst2", "stsb", "sst2", "rte", "stsb", "sst2"};
  std::vector<task_input> xs;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    const auto enc = f.tok.encode(sentences[i], 64);
    xs.push_back({order[i], enc.input_ids, enc.token_type_ids});
  }
  encoder_state<float> st;
  const auto got = bank.classify(xs, st);
  REQUIRE(got.size() == xs.size());

  for (const auto& [name, patch] : {std::pair{"sst2", sst2}, std::pair{"rte", rte}, std::pair{"stsb", stsb}}) {
    CAPTURE(name);
    std::vector<std::string> texts;
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (order[i] == name) texts.push_back(sentences[i]), where.push_back(i);
    const auto ref = f.alone(patch, texts);
    const std::size_t C = ref.size() / texts.size();
    // predict_logits (training's evaluation, bitfit predict) is the same computation.
    const auto model = f.model(patch, texts);
    REQUIRE(model.size() == ref.size());
    CHECK(std::memcmp(model.data(), ref.data(), ref.size() * sizeof(float)) == 0);
    for (std::size_t k = 0; k < where.size(); ++k) {
      const auto& o = got[where[k]];
      REQUIRE(o.task->name == name);
      REQUIRE(o.logits.size() == C);
      CHECK(std::memcmp(o.logits.data(), ref.data() + k * C, C * sizeof(float)) == 0);
      // The same sequence alone in its batch: the outputs do not depend on the company.
      const auto one = f.alone(patch, {texts[k]});
      CHECK(std::memcmp(o.logits.data(), one.data(), C * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("task bank: loading is all or nothing and names its file; unknown tasks are refused") {
  fixture f;
  task_bank bank(f.shared, f.loaded.id);
  const auto good = f.make_patch("good.safetensors", "sst2", {"0", "1"}, runtime_mask{bitfit_all::bits()}, 4);
  bank.load("a", good);
  // Another backbone.
  task_bank other(f.shared, std::string(64, 'b'));
  CHECK_THROWS_WITH_AS(other.load("a", good), doctest::Contains("good.safetensors"), error);
  CHECK(other.tasks().empty());
  // A damaged file.
  const auto bad = f.dir / "bad.safetensors";
  { std::ofstream(bad) << "not a patch"; }
  CHECK_THROWS_WITH_AS(bank.load("b", bad), doctest::Contains("bad.safetensors"), error);
  CHECK(bank.tasks().size() == 1);
  CHECK_THROWS_WITH_AS(bank.load("a", good), doctest::Contains("already loaded"), error);
  encoder_state<float> st;
  const auto enc = f.tok.encode("fine", 16);
  CHECK_THROWS_WITH_AS(bank.classify({{"nope", enc.input_ids, enc.token_type_ids}}, st),
                       doctest::Contains("unknown task 'nope'"), error);
  CHECK(bank.unload("a"));
  CHECK_FALSE(bank.unload("a"));
}

TEST_CASE("task bank: requests on several threads while tasks are loaded and unloaded") {
  fixture f;
  task_bank bank(f.shared, f.loaded.id);
  const auto p = f.make_patch("p.safetensors", "sst2", {"0", "1"}, runtime_mask{bitfit_all::bits()}, 5);
  bank.load("steady", p);
  const auto enc = f.tok.encode(sentences[0], 64);
  encoder_state<float> st0;
  const auto want = bank.classify({{"steady", enc.input_ids, enc.token_type_ids}}, st0)[0].logits;
  std::atomic<bool> stop = false;
  std::atomic<int> wrong = 0, done = 0;
  std::thread churn([&] {
    for (int i = 0; !stop; ++i) {
      bank.load("flicker", p, true);
      bank.unload("flicker");
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c)
    clients.emplace_back([&] {
      encoder_state<float> st;
      for (int i = 0; i < 4; ++i) {
        const auto got = bank.classify({{"steady", enc.input_ids, enc.token_type_ids}}, st)[0].logits;
        if (std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) != 0) ++wrong;
        ++done;
      }
    });
  for (auto& t : clients) t.join();
  stop = true;
  churn.join();
  CHECK(done == 8);
  CHECK(wrong == 0);
}
