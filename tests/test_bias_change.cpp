// bias_change_between: the paper's Figure 1 quantity, (1/dim b)·‖b_F − b_0‖₁ per layer term.
// Known perturbations give known values; a change to one term of one layer shows in that cell
// only (bq, bk, bv are slices of one fused b_qkv); weights, emb_bLN and pooler_b do not count;
// mismatched models and out-of-range lookups are errors that say what is wrong.
#include "test_support.hpp"

#include <bitfit/train/bias_change.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

using namespace bitfit;
using bitfit::test::error_of;
using bitfit::test::tiny_config;

namespace {

/// Parameters whose every entry differs, so a misplaced slice cannot go unnoticed.
bert_params<float> numbered_params(bool with_weights = true) {
  bert_params<float> p(tiny_config(), with_weights);
  for (std::size_t i = 0; i < p.data.size(); ++i) p.data[i] = 0.25f - 0.001f * float(i);
  return p;
}

/// Elements in term `t` of one layer.
std::size_t term_size(const bert_config& c, term t) {
  return std::size_t(t == term::bm2 ? c.intermediate_size : c.hidden_size);
}

/// Adds `delta` to every element of term `t` in layer `l`.
void shift(bert_params<float>& p, term t, int l, float delta) {
  float* b = p.bias(t, l);
  for (std::size_t i = 0; i < term_size(p.config, t); ++i) b[i] += delta;
}

/// The number of nonzero cells.
int nonzero_cells(const bias_change& c) {
  int n = 0;
  for (double v : c.value) n += v != 0.0;
  return n;
}

}  // namespace

TEST_CASE("identical parameters: an 8 x L table of zeros, rows in the paper's order") {
  const auto p = numbered_params();
  const auto c = bias_change_between(p, p);
  REQUIRE(c.terms.size() == 8);
  CHECK(c.layers == 2);
  CHECK(c.value.size() == 16);
  CHECK(nonzero_cells(c) == 0);
  const term order[] = {term::bq, term::bk, term::bv, term::bm1, term::bLN1, term::bm2, term::bm3, term::bLN2};
  for (std::size_t r = 0; r < 8; ++r) {
    CHECK(c.terms[r] == order[r]);
    CHECK(c.row(order[r]) == r);
  }
  CHECK(c.max() == 0.0);
}

TEST_CASE("one term of one layer changed: that cell only, for every term (bq/bk/bv are slices of b_qkv)") {
  const auto before = numbered_params();
  for (term t : layer_terms) {
    for (int l = 0; l < before.config.num_hidden_layers; ++l) {
      CAPTURE(std::string(term_name(t)));
      CAPTURE(l);
      auto after = before;
      shift(after, t, l, 0.5f);
      const auto c = bias_change_between(before, after);
      CHECK(nonzero_cells(c) == 1);
      CHECK(c.at(t, l) == doctest::Approx(0.5).epsilon(1e-6));
      CHECK(c.max() == doctest::Approx(0.5).epsilon(1e-6));
    }
  }
}

TEST_CASE("only bk changed: only the bk row is nonzero") {
  const auto before = numbered_params();
  auto after = before;
  shift(after, term::bk, 0, -0.125f);
  shift(after, term::bk, 1, 0.25f);
  const auto c = bias_change_between(before, after);
  CHECK(nonzero_cells(c) == 2);
  CHECK(c.at(term::bk, 0) == doctest::Approx(0.125).epsilon(1e-6));
  CHECK(c.at(term::bk, 1) == doctest::Approx(0.25).epsilon(1e-6));
  for (term t : layer_terms)
    if (t != term::bk)
      for (int l = 0; l < 2; ++l) CHECK(c.at(t, l) == 0.0);
}

TEST_CASE("the mean is over the term's own size: I for bm2, H for the others; signs do not cancel") {
  const auto before = numbered_params();
  auto after = before;
  // bm2 (I = 16) of layer 1: one element moved by 1.6 -> 1.6 / 16.
  after.bias(term::bm2, 1)[3] += 1.6f;
  // bm3 (H = 8) of layer 0: one element moved by 1.6 -> 1.6 / 8.
  after.bias(term::bm3, 0)[7] -= 1.6f;
  // bLN1 of layer 0: alternating +-0.75 -> mean |delta| = 0.75, not 0.
  for (int i = 0; i < 8; ++i) after.bias(term::bLN1, 0)[i] += (i % 2 ? 0.75f : -0.75f);
  const auto c = bias_change_between(before, after);
  CHECK(nonzero_cells(c) == 3);
  CHECK(c.at(term::bm2, 1) == doctest::Approx(0.1).epsilon(1e-5));
  CHECK(c.at(term::bm3, 0) == doctest::Approx(0.2).epsilon(1e-5));
  CHECK(c.at(term::bLN1, 0) == doctest::Approx(0.75).epsilon(1e-5));
  CHECK(c.value[c.row(term::bm2) * 2 + 1] == c.at(term::bm2, 1));  // row-major (terms, layers)
}

TEST_CASE("weights, LayerNorm gains, emb_bLN and pooler_b are not in the table") {
  const auto before = numbered_params();
  auto after = before;
  for (const auto& e : after.layout.entries) {
    if (e.is_bias && e.layer >= 0) continue;
    for (float& v : after.tensor(e)) v += 1.0f;
  }
  CHECK(nonzero_cells(bias_change_between(before, after)) == 0);
}

TEST_CASE("bias-only buffers (a patch applied to no weights) work as full ones") {
  const auto before = numbered_params(false);
  auto after = before;
  shift(after, term::bq, 1, 0.5f);
  const auto c = bias_change_between(before, after);
  CHECK(nonzero_cells(c) == 1);
  CHECK(c.at(term::bq, 1) == doctest::Approx(0.5).epsilon(1e-6));
}

TEST_CASE("a NaN in a fine-tuned bias shows as NaN in its cell") {
  const auto before = numbered_params();
  auto after = before;
  after.bias(term::bv, 0)[2] = std::numeric_limits<float>::quiet_NaN();
  const auto c = bias_change_between(before, after);
  CHECK(std::isnan(c.at(term::bv, 0)));
  CHECK(c.at(term::bv, 1) == 0.0);
}

TEST_CASE("models of different shapes are refused, naming the field") {
  const auto before = numbered_params();
  auto cfg = tiny_config();
  cfg.num_hidden_layers = 3;
  bert_params<float> deeper(cfg, true);
  CHECK(error_of([&] { bias_change_between(before, deeper); }) ==
        "bias_change_between: the two models differ in num_hidden_layers (2 before, 3 after)");
  cfg = tiny_config();
  cfg.intermediate_size = 32;
  bert_params<float> wider(cfg, true);
  CHECK(error_of([&] { bias_change_between(before, wider); }).find("intermediate_size") != std::string::npos);
}

TEST_CASE("at() refuses a layer out of range and a term without a row") {
  const auto p = numbered_params();
  const auto c = bias_change_between(p, p);
  CHECK(error_of([&] { (void)c.at(term::bq, 2); }) == "bias_change: layer 2 out of range [0, 2)");
  CHECK(error_of([&] { (void)c.at(term::bq, -1); }).find("out of range") != std::string::npos);
  CHECK(error_of([&] { (void)c.at(term::pooler_b, 0); }) == "bias_change: no row for term pooler_b");
}
