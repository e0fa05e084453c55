// encoder_forward / encoder_backward in double on a tiny model (L=2, H=8, A=2, I=16, V=50, P=16)
// and a packed batch of three sequences of different lengths and token types. Loss: sum(R ⊙ pooled)
// (sequence tasks), or sum(Rt ⊙ last hidden state) over every token (token tasks).
// Finite-difference checks of every bias term (BitFit) and every weight (full fine-tuning), and the
// exactness contracts between mask policies: a smaller mask computes exactly the corresponding
// entries of a larger one, a runtime mask exactly those of the equivalent compile-time mask.
#include <bitfit/model/encoder.hpp>
#include <bitfit/train/param_subset.hpp>

#include "tiny_model.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;
using bitfit::test::tiny_batch;
using bitfit::test::tiny_config;

namespace {

const dropout_config no_dropout{};
const dropout_config active_dropout{0.2, 0.2, 1234};

struct encoder_fixture {
  bert_config cfg = tiny_config();
  token_batch batch = tiny_batch();
  int H = cfg.hidden_size, L = cfg.num_hidden_layers;
  bert_params<double> p{cfg, true};
  test::rng r{71};
  std::vector<double> R = r.vector(std::size_t(batch.size()) * H);
  dropout_config drop;
  encoder_state<double> st;

  explicit encoder_fixture(const dropout_config& d = {}) : drop(d) { test::randomize(p, r); }
  double loss() {
    encoder_forward(st, p, batch, no_grad{}, drop);
    return test::dot(R, st.pooled);
  }
  /// Zeroes g, then runs forward and backward under `mask`.
  template <mask_policy Mask>
  void gradient(bert_params<double>& g, const Mask& mask, int first_trainable_layer = 0) {
    encoder_forward(st, p, batch, mask, drop, first_trainable_layer);
    std::fill(g.data.begin(), g.data.end(), 0.0);
    encoder_backward_pooled(g, st, p, batch, R.data(), mask, drop);
  }
  /// The bias gradient under `mask` (see the note on exactness below).
  template <mask_policy Mask>
  std::vector<double> bias_gradient(bert_params<double>& g, const Mask& mask, int first_trainable_layer = 0) {
    gradient(g, mask, first_trainable_layer);
    return {g.data.begin(), g.data.end()};
  }
};

/// Whether entry e (of a bias-only gradient) belongs to a term the policy trains.
bool in_terms(const param_entry& e, std::initializer_list<term> ts) {
  return std::find(ts.begin(), ts.end(), e.bias_term) != ts.end();
}
}  // namespace

// Note on exactness: Eigen's vectorised reductions peel a number of leading elements that depends
// on a buffer's address; every buffer is 64-byte aligned (core/buffer.hpp) and bias gradients are
// summed in a fixed order, so the comparisons of bit-identity below hold for any buffers.

TEST_CASE("encoder: every bias term under bitfit_all matches finite differences") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    bert_params<double> g(f.cfg, false);
    f.gradient(g, bitfit_all{});
    auto loss = [&] { return f.loss(); };
    std::set<term> seen;
    for (const auto& e : f.p.layout.entries) {
      if (!e.is_bias) continue;
      seen.insert(e.bias_term);
      check_gradient(e.name, loss, f.p.tensor(e).data(), g.tensor(e).data(), e.numel);
    }
    CHECK(seen.size() == all_terms.size());
  }
}

TEST_CASE("encoder: every weight under full_mask matches finite differences") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    bert_params<double> g(f.cfg, true);
    f.gradient(g, full_mask{});
    auto loss = [&] { return f.loss(); };
    const auto& word = f.p.layout.find("embeddings.word_embeddings.weight");
    for (const auto& e : f.p.layout.entries) {
      if (&e == &word) continue;
      check_gradient(e.name, loss, f.p.tensor(e).data(), g.tensor(e).data(), e.numel);
    }
    // Word embeddings: FD on the rows the batch uses; every other row gets exactly nothing.
    const std::set<std::int32_t> used(f.batch.ids.begin(), f.batch.ids.end());
    std::vector<std::size_t> idx;
    for (auto id : used)
      for (int h = 0; h < f.H; ++h) idx.push_back(std::size_t(id) * f.H + h);
    test::check_gradient_at(word.name, loss, f.p.tensor(word).data(), g.tensor(word).data(), idx);
    std::size_t nonzero_unused = 0;
    const auto gw = g.tensor(word);
    for (int v = 0; v < f.cfg.vocab_size; ++v)
      if (!used.count(v))
        for (int h = 0; h < f.H; ++h) nonzero_unused += gw[std::size_t(v) * f.H + h] != 0.0;
    CHECK(nonzero_unused == 0);
  }
}

TEST_CASE("encoder: a gradient on every token's hidden state (token tasks) matches finite differences") {
  // Loss sum(Rt ⊙ last_hidden) over all N tokens, the pooler not run: what a token head sends back.
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    const auto Rt = f.r.vector(std::size_t(f.batch.tokens()) * f.H);
    f.st.run_pooler = false;
    auto loss = [&] {
      encoder_forward(f.st, f.p, f.batch, no_grad{}, f.drop);
      return test::dot(Rt, {f.st.last_hidden, Rt.size()});
    };
    bert_params<double> gb(f.cfg, false), gw(f.cfg, true);
    encoder_forward(f.st, f.p, f.batch, bitfit_all{}, f.drop);
    encoder_backward(gb, f.st, f.p, f.batch, Rt.data(), bitfit_all{}, f.drop);
    encoder_forward(f.st, f.p, f.batch, full_mask{}, f.drop);
    encoder_backward(gw, f.st, f.p, f.batch, Rt.data(), full_mask{}, f.drop);
    for (const auto& e : f.p.layout.entries) {
      if (e.name.starts_with("pooler.")) {  // untouched: the pooler is a sequence head's business
        for (auto* g : {&gb, &gw})
          if (e.is_bias || g == &gw) CHECK(std::ranges::all_of(g->tensor(e), [](double v) { return v == 0.0; }));
        continue;
      }
      if (e.is_bias) check_gradient(e.name + " (bitfit)", loss, f.p.tensor(e).data(), gb.tensor(e).data(), e.numel);
      if (e.name.find("word_embeddings") == std::string::npos)  // rows the batch does not use: see above
        check_gradient(e.name + " (full)", loss, f.p.tensor(e).data(), gw.tensor(e).data(), e.numel);
    }
  }
}

TEST_CASE("encoder: weight_subset_mask computes full_mask's weight gradient at the marked entries only") {
  for (const bool rows_cols : {false, true}) {
    CAPTURE(rows_cols);
    encoder_fixture f(active_dropout);
    const auto& layout = f.p.layout;
    const auto keep = rows_cols ? random_row_col_subset(layout, layout.bias_size, 5)
                                : random_uniform_subset(layout, layout.bias_size, 5);
    bert_params<double> full(f.cfg, true), sub(f.cfg, true);
    f.gradient(full, full_mask{});
    weight_subset_mask mask;
    mask.keep = keep.data(), mask.grad_base = sub.data.data();
    f.gradient(sub, mask);
    std::size_t marked_in_matrices = 0, unmarked_nonzero = 0, far = 0, dense_differ = 0;
    for (const auto& e : layout.entries) {
      // The matrices of linear layers (the GEMM block and the pooler's) take the subset path;
      // everything else (biases, gains, embedding tables) is computed as under full_mask.
      const bool matrix = e.is_gemm || e.name == "pooler.dense.weight";
      for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) {
        if (!matrix) {
          dense_differ += sub.data[i] != full.data[i];
        } else if (keep[i]) {
          ++marked_in_matrices;
          far += std::abs(sub.data[i] - full.data[i]) > 1e-12 * (1.0 + std::abs(full.data[i]));
        } else {
          unmarked_nonzero += sub.data[i] != 0.0;
        }
      }
    }
    CHECK(marked_in_matrices > 0);
    CHECK(far == 0);
    CHECK(unmarked_nonzero == 0);
    CHECK(dense_differ == 0);
  }
}

TEST_CASE("encoder: bitfit_bq_bm2 computes exactly bitfit_all's bq and bm2 entries, nothing else") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    bert_params<double> g(f.cfg, false);
    const auto all = f.bias_gradient(g, bitfit_all{});
    const auto two = f.bias_gradient(g, bitfit_bq_bm2{});
    std::size_t mismatched = 0, nonzero_elsewhere = 0, checked = 0;
    for (const auto& e : f.p.layout.entries) {
      if (!e.is_bias) continue;
      for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) {
        if (in_terms(e, {term::bq, term::bm2})) {
          ++checked;
          mismatched += two[i] != all[i];
        } else {
          nonzero_elsewhere += two[i] != 0.0;
        }
      }
    }
    CHECK(checked == std::size_t(f.L) * (f.H + f.cfg.intermediate_size));
    CHECK(mismatched == 0);
    CHECK(nonzero_elsewhere == 0);
  }
}

namespace {
/// A runtime_mask with exactly the bits of the static mask M.
template <class M>
runtime_mask runtime_of() {
  runtime_mask m;
  for (term t : all_terms)
    if (M::may_train(t)) m.add(t);
  REQUIRE(m.bits == M::bits());
  return m;
}

template <class M>
void check_runtime_matches(encoder_fixture& f, bert_params<double>& g, const std::string& what) {
  CAPTURE(what);
  const auto compiled = f.bias_gradient(g, M{});
  const auto runtime = f.bias_gradient(g, runtime_of<M>());
  CHECK(compiled == runtime);
}

template <std::size_t... K>
void check_single_terms(encoder_fixture& f, bert_params<double>& g, std::index_sequence<K...>) {
  (check_runtime_matches<trainable_mask<all_terms[K]>>(f, g, std::string(term_name(all_terms[K]))), ...);
}
}  // namespace

TEST_CASE("encoder: a runtime_mask gives bit-identical gradients to the same compile-time mask") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    bert_params<double> g(f.cfg, false);
    check_runtime_matches<bitfit_all>(f, g, "bitfit_all");
    check_runtime_matches<bitfit_bq_bm2>(f, g, "bq+bm2");
    check_single_terms(f, g, std::make_index_sequence<all_terms.size()>{});
    check_runtime_matches<frozen_mask>(f, g, "none");
    // And the single-term gradients are not all trivially zero (bk alone is rounding noise).
    const auto bq_only = f.bias_gradient(g, runtime_of<trainable_mask<term::bq>>());
    CHECK_FALSE(test::all_zero(bq_only));
  }
}

TEST_CASE("encoder: frozen_mask trains nothing in the encoder") {
  encoder_fixture f(active_dropout);
  bert_params<double> g(f.cfg, false);
  f.gradient(g, frozen_mask{});
  CHECK(test::all_zero(g.data));
  runtime_mask none;
  f.gradient(g, none);
  CHECK(test::all_zero(g.data));
  // Also for a full-size gradient buffer: no weight gradient either.
  bert_params<double> gw(f.cfg, true);
  f.gradient(gw, frozen_mask{});
  CHECK(test::all_zero(gw.data));
}

TEST_CASE("encoder: first_trainable_layer = 1 leaves layer 0 alone and layer 1 unchanged") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    bert_params<double> g(f.cfg, false);
    const auto normal = f.bias_gradient(g, bitfit_bq_bm2{});
    const auto upper = f.bias_gradient(g, bitfit_bq_bm2{}, 1);
    std::size_t layer0_nonzero = 0, layer1_mismatch = 0, layer1_nonzero = 0;
    for (const auto& e : f.p.layout.entries) {
      if (!e.is_bias) continue;
      for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) {
        if (e.layer == 1) {
          layer1_mismatch += upper[i] != normal[i];
          layer1_nonzero += upper[i] != 0.0;
        } else {
          layer0_nonzero += upper[i] != 0.0;
        }
      }
    }
    CHECK(layer0_nonzero == 0);
    CHECK(layer1_mismatch == 0);
    CHECK(layer1_nonzero > 0);
  }
}

TEST_CASE("encoder: first_trainable_layer = 1 computes no gradient below layer 1, the embedding LayerNorm's included") {
  auto check_mask = [](const auto& mask, int expected_lowest) {
    for (const auto* drop : {&no_dropout, &active_dropout}) {
      CAPTURE(drop->hidden);
      encoder_fixture f(*drop);
      bert_params<double> g(f.cfg, false);
      const auto normal = f.bias_gradient(g, mask);
      CHECK(f.st.lowest == -1);
      const auto upper = f.bias_gradient(g, mask, 1);
      CHECK(f.st.lowest == expected_lowest);  // where the backward stops
      std::size_t below_nonzero = 0, above_mismatch = 0, above_nonzero = 0;
      for (const auto& e : f.p.layout.entries) {
        if (!e.is_bias) continue;
        const bool below = e.bias_term == term::emb_bLN || e.layer == 0;
        for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) {
          if (below) {
            below_nonzero += upper[i] != 0.0;
          } else {
            above_mismatch += upper[i] != normal[i];
            above_nonzero += upper[i] != 0.0;
          }
        }
      }
      CHECK(below_nonzero == 0);
      CHECK(above_mismatch == 0);  // layer 1 and the pooler: exactly as without the limit
      CHECK(above_nonzero > 0);
    }
  };
  check_mask(bitfit_all{}, 1);
  check_mask(runtime_mask{bitfit_all::bits()}, 1);
  // No layer term: nothing between the embeddings and the pooler trains, so only the pooler's backward runs.
  check_mask(runtime_mask{}.add(term::emb_bLN).add(term::pooler_b), tiny_config().num_hidden_layers);
}

TEST_CASE("encoder: the forward output does not depend on the mask policy") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    encoder_forward(f.st, f.p, f.batch, bitfit_all{}, f.drop);
    const auto trained = f.st.pooled;
    encoder_forward(f.st, f.p, f.batch, no_grad{}, f.drop);
    CHECK(f.st.pooled == trained);
  }
}

TEST_CASE("encoder: full fine-tuning's forward output is BitFit's, bit for bit") {
  // full_mask writes ctx, h3 and h4 into cache buffers instead of the shared scratch; with every
  // buffer 64-byte aligned (core/buffer.hpp) Eigen peels its vectorised loops the same way for both.
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->hidden);
    encoder_fixture f(*drop);
    encoder_forward(f.st, f.p, f.batch, bitfit_all{}, f.drop);
    const auto trained = f.st.pooled;
    encoder_forward(f.st, f.p, f.batch, full_mask{}, f.drop);
    for (std::size_t i = 0; i < trained.size(); ++i)
      CHECK(f.st.pooled[i] == doctest::Approx(trained[i]).epsilon(1e-13).scale(1e-3));
    CHECK(f.st.pooled == trained);
  }
}

TEST_CASE("encoder: BitFit keeps fewer activations than full fine-tuning") {
  encoder_fixture f;
  encoder_forward(f.st, f.p, f.batch, no_grad{});
  const auto inference = f.st.saved_floats();
  encoder_forward(f.st, f.p, f.batch, bitfit_all{});
  const auto bitfit = f.st.saved_floats();
  encoder_forward(f.st, f.p, f.batch, full_mask{});
  const auto full = f.st.saved_floats();
  CAPTURE(inference);
  CAPTURE(bitfit);
  CAPTURE(full);
  CHECK(bitfit < full);
  CHECK(inference < bitfit);
}

TEST_CASE("encoder: encoder_backward accumulates into the gradient") {
  encoder_fixture f(active_dropout);
  bert_params<double> g(f.cfg, false);
  f.gradient(g, bitfit_all{});
  const auto once = g.data;
  encoder_backward_pooled(g, f.st, f.p, f.batch, f.R.data(), bitfit_all{}, f.drop);
  // Not bit-exact 2·once: the LayerNorm biases add token by token into the running gradient.
  for (std::size_t i = 0; i < once.size(); ++i)
    CHECK(g.data[i] == doctest::Approx(2 * once[i]).epsilon(1e-13).scale(1e-3));
}
