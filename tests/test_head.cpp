// Task heads (train/head.hpp): the cross-entropy with ignored rows (token tasks), and a token
// classification head on every token's last hidden state, end to end through the tiny encoder:
// finite differences on every bias term, the head's W and b (double).
#include <bitfit/model/encoder.hpp>
#include <bitfit/train/head.hpp>

#include "tiny_model.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

TEST_CASE("cross_entropy: rows labelled ignore_label are not scored, the mean is over the scored rows") {
  test::rng r{5};
  const int C = 3;
  std::vector<double> logits = r.vector(5 * C, -2, 2), dlogits(logits.size());
  const std::vector<int> labels = {2, ignore_label, 0, ignore_label, 1};
  auto loss = [&] {
    std::vector<double> scratch(logits.size());
    return cross_entropy(scratch.data(), logits.data(), labels, C);
  };
  const double l = cross_entropy(dlogits.data(), logits.data(), labels, C);
  check_gradient("logits", loss, logits.data(), dlogits.data(), logits.size());
  for (int c = 0; c < C; ++c) CHECK((dlogits[1 * C + c] == 0.0 && dlogits[3 * C + c] == 0.0));
  // The same as the three scored rows alone.
  const std::vector<double> scored = {logits[0], logits[1], logits[2], logits[6], logits[7], logits[8],
                                      logits[12], logits[13], logits[14]};
  std::vector<double> d3(9);
  CHECK(cross_entropy(d3.data(), scored.data(), std::vector<int>{2, 0, 1}, C) == doctest::Approx(l).epsilon(1e-15));
  // Nothing scored: 0 and no gradient (torch would give NaN).
  CHECK(cross_entropy(dlogits.data(), logits.data(), std::vector<int>(5, ignore_label), C) == 0.0);
  CHECK(std::ranges::all_of(dlogits, [](double v) { return v == 0.0; }));
  // Any other negative label is an error, as an out-of-range one.
  CHECK_THROWS_AS(cross_entropy(dlogits.data(), logits.data(), std::vector<int>{-1, 0, 0, 0, 0}, C), error);
}

TEST_CASE("token head: every bias term and the head match finite differences through the encoder") {
  // BertForTokenClassification: logits (N, C) = dropout(last hidden) W^T + b, cross-entropy over
  // the labelled tokens; the gradient enters every token's hidden state, the pooler is not run.
  const auto cfg = test::tiny_config();
  const auto batch = test::tiny_batch();
  const int N = batch.tokens(), H = cfg.hidden_size, C = 4;
  test::rng r{29};
  bert_params<double> p(cfg, true);
  test::randomize(p, r);
  task_head<double> head(C, H);
  r.fill(head.W, -0.5, 0.5), r.fill(head.b, -0.5, 0.5);
  // First sub-token labelled, [CLS]/[SEP] and continuation pieces ignored (sequences 5, 1, 7).
  const std::vector<int> labels = {ignore_label, 3, 0, ignore_label, ignore_label, ignore_label,
                                   ignore_label, 1, ignore_label, ignore_label, 2, 2, ignore_label};
  REQUIRE(int(labels.size()) == N);
  const dropout_config drop{0.2, 0.2, 99};
  encoder_state<double> st;
  st.run_pooler = false;
  std::vector<double> x(std::size_t(N) * H), logits(std::size_t(N) * C), dlogits(logits.size());

  auto loss = [&] {
    encoder_forward(st, p, batch, no_grad{}, drop);
    head_forward(logits.data(), x.data(), st.last_hidden, head, N, drop.head());
    return cross_entropy(dlogits.data(), logits.data(), labels, C);
  };
  bert_params<double> g(cfg, false);
  task_head<double> dhead(C, H);
  encoder_forward(st, p, batch, bitfit_all{}, drop);
  head_forward(logits.data(), x.data(), st.last_hidden, head, N, drop.head());
  cross_entropy(dlogits.data(), logits.data(), labels, C);
  std::vector<double> dlast(std::size_t(N) * H);
  head_backward(dlast.data(), dhead, dlogits.data(), x.data(), head, N, drop.head());
  encoder_backward(g, st, p, batch, dlast.data(), bitfit_all{}, drop);

  check_gradient("classifier.weight", loss, head.W.data(), dhead.W.data(), head.W.size());
  check_gradient("classifier.bias", loss, head.b.data(), dhead.b.data(), head.b.size());
  for (const auto& e : p.layout.entries) {
    if (!e.is_bias) continue;
    if (e.name.starts_with("pooler.")) {
      CHECK(std::ranges::all_of(g.tensor(e), [](double v) { return v == 0.0; }));
      continue;
    }
    check_gradient(e.name, loss, p.tensor(e).data(), g.tensor(e).data(), e.numel);
  }
}
