// The task bank (issue #10): K patches over one backbone, one forward over a batch that mixes
// their tasks. Each sequence's outputs must be bit-identical (fp32, oneDNN, same thread count) to
// those of its patch served alone, whatever it is batched with, and to predict_logits (training's
// evaluation and `bitfit predict`).
#include "task_bank_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <thread>

using namespace bitfit;
using bitfit::test::fixture;
using bitfit::test::sentences;

TEST_CASE("task bank: a mixed batch gives each sequence exactly its own patch's outputs") {
  fixture f;
  const auto all = runtime_mask{bitfit_all::bits()};
  const auto bq_bm2 = runtime_mask{bitfit_bq_bm2::bits()};
  const auto sst2 = f.make_patch("sst2.safetensors", "sst2", {"0", "1"}, all, 1);
  const auto rte = f.make_patch("rte.safetensors", "rte", {"entailment", "not_entailment"}, bq_bm2, 2);
  const auto stsb = f.make_patch("stsb.safetensors", "stsb", {}, all, 3);
  const auto pos = f.make_patch("pos.safetensors", "pos", {"ADJ", "NOUN", "PUNCT", "VERB"}, all, 5, true);
  task_bank bank(f.shared, f.loaded.id);
  bank.load("sst2", sst2), bank.load("rte", rte), bank.load("stsb", stsb), bank.load("pos", pos);
  CHECK(bank.tasks().size() == 4);
  CHECK(bank.find("pos")->per_token());

  // Interleaved: every task appears several times, in no particular order; the tagger's outputs
  // are per token, the others' per sequence.
  const std::vector<std::string> order = {"rte", "pos", "sst2", "stsb", "sst2", "pos", "rte", "stsb", "sst2"};
  std::vector<task_input> xs;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    const auto enc = f.tok.encode(sentences[i], 64);
    xs.push_back({order[i], enc.input_ids, enc.token_type_ids});
  }
  encoder_state<float> st;
  const auto got = bank.classify(xs, st);
  REQUIRE(got.size() == xs.size());

  for (const auto& [name, patch] :
       {std::pair{"sst2", sst2}, std::pair{"rte", rte}, std::pair{"stsb", stsb}, std::pair{"pos", pos}}) {
    CAPTURE(name);
    std::vector<std::string> texts;
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (order[i] == name) texts.push_back(sentences[i]), where.push_back(i);
    const auto ref = f.alone(patch, texts);
    // predict_logits (training's evaluation, bitfit predict) is the same computation.
    const auto model = f.model(patch, texts);
    REQUIRE(model.size() == ref.size());
    CHECK(std::memcmp(model.data(), ref.data(), ref.size() * sizeof(float)) == 0);
    std::size_t at = 0;  // where sequence k's outputs start in ref
    for (std::size_t k = 0; k < where.size(); ++k) {
      const auto& o = got[where[k]];
      REQUIRE(o.task->name == name);
      const std::size_t rows = o.task->per_token() ? xs[where[k]].ids.size() : 1;
      REQUIRE(o.logits.size() == rows * std::size_t(o.task->head.C));
      REQUIRE(at + o.logits.size() <= ref.size());
      CHECK(std::memcmp(o.logits.data(), ref.data() + at, o.logits.size() * sizeof(float)) == 0);
      at += o.logits.size();
      // The same sequence alone in its batch: the outputs do not depend on the company.
      const auto one = f.alone(patch, {texts[k]});
      REQUIRE(one.size() == o.logits.size());
      CHECK(std::memcmp(o.logits.data(), one.data(), one.size() * sizeof(float)) == 0);
    }
    CHECK(at == ref.size());
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
