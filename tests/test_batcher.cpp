// The batcher (issue #10): requests from many threads run as mixed-task forwards on one worker.
// Batching must change when an answer comes, never what it is (bit-identical to the bank alone),
// respect its bounds, fail only the request at fault, and finish what is queued when it stops.
#include "task_bank_fixture.hpp"

#include <bitfit/serve/batcher.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <thread>

using namespace bitfit;
using namespace std::chrono_literals;
using bitfit::test::fixture;
using bitfit::test::sentences;

namespace {

/// Inputs of `task`: sentences[first], sentences[first + 1], ... (n of them, wrapping around).
std::vector<task_input> inputs(const fixture& f, const std::string& task, std::size_t first, std::size_t n) {
  std::vector<task_input> xs;
  for (std::size_t i = 0; i < n; ++i) {
    const auto enc = f.tok.encode(sentences[(first + i) % sentences.size()], 64);
    xs.push_back({task, enc.input_ids, enc.token_type_ids});
  }
  return xs;
}

bool same_logits(const std::vector<task_output>& a, const std::vector<task_output>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].task != b[i].task || a[i].logits.size() != b[i].logits.size() ||
        std::memcmp(a[i].logits.data(), b[i].logits.data(), a[i].logits.size() * sizeof(float)) != 0)
      return false;
  return true;
}

struct bank_of_three {
  fixture f;
  task_bank bank{f.shared, f.loaded.id};
  bank_of_three() {
    const auto all = runtime_mask{bitfit_all::bits()};
    bank.load("sst2", f.make_patch("sst2.safetensors", "sst2", {"0", "1"}, all, 1));
    bank.load("rte", f.make_patch("rte.safetensors", "rte", {"entailment", "not_entailment"},
                                  runtime_mask{bitfit_bq_bm2::bits()}, 2));
    bank.load("stsb", f.make_patch("stsb.safetensors", "stsb", {}, all, 3));
  }
  /// The bank's outputs for `xs` in a forward of their own.
  std::vector<task_output> alone(const std::vector<task_input>& xs) const {
    encoder_state<float> st;
    return bank.classify(xs, st);
  }
};

}  // namespace

TEST_CASE("batcher: requests that arrive together share one forward, with exactly their own outputs") {
  bank_of_three b;
  const std::vector<std::string> tasks = {"sst2", "rte", "stsb", "sst2", "rte", "stsb", "sst2", "rte"};
  std::vector<std::vector<task_input>> requests;
  for (std::size_t r = 0; r < tasks.size(); ++r) requests.push_back(inputs(b.f, tasks[r], r, 1 + r % 3));
  // A generous wait: every request is queued long before the oldest one's wait ends.
  batcher q(b.bank, {.max_batch = 1000, .max_wait = 2s});
  std::vector<std::future<batcher::result>> futures;
  for (const auto& xs : requests) futures.push_back(q.submit(xs));
  for (std::size_t r = 0; r < requests.size(); ++r) {
    CAPTURE(r);
    CHECK(same_logits(futures[r].get(), b.alone(requests[r])));
  }
  const auto s = q.stats();
  CHECK(s.requests == requests.size());
  CHECK(s.batches == 1);
  CHECK(s.sequences == 15);  // 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2
  CHECK(s.largest_batch == 15);
}

TEST_CASE("batcher: a forward takes at most max_batch sequences; a larger request runs alone, whole") {
  bank_of_three b;
  batcher q(b.bank, {.max_batch = 4, .max_wait = 200ms});
  std::vector<std::future<batcher::result>> futures;
  for (int r = 0; r < 4; ++r) futures.push_back(q.submit(inputs(b.f, "sst2", std::size_t(r), 3)));
  futures.push_back(q.submit(inputs(b.f, "rte", 0, 10)));
  for (auto& fu : futures) CHECK_FALSE(fu.get().empty());
  const auto s = q.stats();
  CHECK(s.batches == 5);  // 3 + 3 > 4: no two of the 3-input requests fit together
  CHECK(s.largest_batch == 10);
  CHECK(q.submit({}).get().empty());
}

TEST_CASE("batcher: an unknown task fails its own request only") {
  bank_of_three b;
  batcher q(b.bank, {.max_batch = 64, .max_wait = 500ms});
  const auto good = inputs(b.f, "rte", 2, 2);
  auto first = q.submit(good);
  auto bad = q.submit(inputs(b.f, "nope", 0, 1));
  auto last = q.submit(inputs(b.f, "stsb", 1, 2));
  CHECK(same_logits(first.get(), b.alone(good)));
  CHECK_THROWS_WITH_AS(bad.get(), doctest::Contains("unknown task 'nope'"), error);
  CHECK(last.get().size() == 2);
}

TEST_CASE("batcher: two workers, many client threads, tasks loaded and unloaded; stopping finishes the queue") {
  bank_of_three b;
  const auto xs = inputs(b.f, "sst2", 0, 2);
  const auto want = b.alone(xs);
  const auto flicker = b.f.make_patch("flicker.safetensors", "sst2", {"0", "1"}, runtime_mask{bitfit_all::bits()}, 9);
  std::atomic<int> wrong = 0, done = 0;
  std::vector<std::future<batcher::result>> last;
  {
    batcher q(b.bank, {.max_batch = 8, .max_wait = 2ms, .workers = 2});
    std::atomic<bool> stop = false;
    std::thread churn([&] {
      while (!stop) {
        b.bank.load("flicker", flicker, true);
        b.bank.unload("flicker");
      }
    });
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c)
      clients.emplace_back([&] {
        for (int i = 0; i < 3; ++i) {
          if (!same_logits(q.submit(xs).get(), want)) ++wrong;
          ++done;
        }
      });
    for (auto& t : clients) t.join();
    stop = true;
    churn.join();
    for (int i = 0; i < 3; ++i) last.push_back(q.submit(xs));
  }  // the destructor runs what is still queued before it returns
  CHECK(done == 12);
  CHECK(wrong == 0);
  for (auto& fu : last) CHECK(same_logits(fu.get(), want));
}
