// encoder_layer_forward / encoder_layer_backward in double on a tiny layer (H=8, A=2, I=16):
// finite-difference checks of the input gradient, of each of the eight bias terms under a
// single-term mask (and that the mask trains nothing else), and of every weight gradient under
// full_mask, with dropout off and active. Loss: sum(R ⊙ out) for a fixed random R.
#include <bitfit/model/encoder_layer.hpp>

#include "grad_check.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;
using bitfit::test::tiny_config;

namespace {

const std::vector<int> offsets = {0, 4, 5, 11};  // lengths 4, 1, 6

/// The two dropout settings every check runs under: off, and active at every site (p = 0.2;
/// with fixed seeds each site is a fixed linear map, so FD still applies).
const layer_dropout no_dropout{};
const layer_dropout active_dropout{{0.2, 101}, {0.2, 202}, {0.2, 303}};

struct layer_fixture {
  bert_config cfg = tiny_config();
  int N = offsets.back(), H = cfg.hidden_size;
  std::size_t attn = attention_cache_size(offsets, cfg.num_attention_heads);
  bert_params<double> p{cfg, true};
  test::rng r{61};
  std::vector<double> x = r.vector(std::size_t(N) * H, -2, 2), R = r.vector(std::size_t(N) * H);
  std::vector<double> out = std::vector<double>(std::size_t(N) * H);
  layer_cache<double> cache;
  layer_scratch<double> scratch;
  layer_dropout drop;

  explicit layer_fixture(const layer_dropout& d) : drop(d) {
    r.fill(p.data, -0.5, 0.5);
    const auto& l = p.layers[0];
    r.fill({l.gLN1, std::size_t(H)}, 0.5, 1.5);
    r.fill({l.gLN2, std::size_t(H)}, 0.5, 1.5);
  }
  const layer_params<double>& params() const { return p.layers[0]; }

  template <mask_policy Mask>
  void forward() {
    cache.resize(N, attn, cfg, Mask::weight_grads);
    scratch.resize(N, cfg, Mask::computes_grads);
    encoder_layer_forward<Mask>(out.data(), cache, x.data(), params(), offsets, cfg, scratch, drop);
  }
  double loss() {
    forward<no_grad>();
    return test::dot(R, out);
  }
  /// Gradients of the loss under `mask` into g (zeroed first); returns the input gradient.
  template <mask_policy Mask>
  std::vector<double> backward(bert_params<double>& g, const Mask& mask, bool want_dinp = true) {
    forward<Mask>();
    std::fill(g.data.begin(), g.data.end(), 0.0);
    std::vector<double> dinp(want_dinp ? x.size() : 0, std::nan(""));  // overwritten, not accumulated
    encoder_layer_backward<Mask>(want_dinp ? dinp.data() : nullptr, g.layers[0], R.data(), cache,
                                 Mask::weight_grads ? x.data() : nullptr, params(), offsets, cfg, mask,
                                 scratch, drop);
    return dinp;
  }
};

std::size_t term_size(const bert_config& c, term t) {
  return std::size_t(t == term::bm2 ? c.intermediate_size : c.hidden_size);
}

/// FD check of term T under trainable_mask<T>; every other gradient entry must stay zero.
template <term T>
void check_single_term(const layer_dropout& drop) {
  layer_fixture f(drop);
  bert_params<double> g(f.cfg, false);
  using mask = trainable_mask<T>;
  const auto dinp = f.backward(g, mask{});
  const std::size_t n = term_size(f.cfg, T);
  const std::string name(term_name(T));
  auto loss = [&] { return f.loss(); };
  check_gradient(name, loss, f.params().bias(T), g.layers[0].bias(T), n);
  check_gradient("dinp", loss, f.x.data(), dinp.data(), dinp.size());

  const std::size_t begin = std::size_t(g.layers[0].bias(T) - g.data.data());
  std::size_t nonzero_elsewhere = 0;
  for (std::size_t i = 0; i < g.data.size(); ++i)
    if ((i < begin || i >= begin + n) && g.data[i] != 0.0) ++nonzero_elsewhere;
  CHECK(nonzero_elsewhere == 0);
}

template <term T>
void check_single_term() {
  SUBCASE("dropout off") { check_single_term<T>(no_dropout); }
  SUBCASE("dropout active") { check_single_term<T>(active_dropout); }
}
}  // namespace

TEST_CASE("encoder layer: each bias term alone matches finite differences") {
  SUBCASE("bq") { check_single_term<term::bq>(); }
  SUBCASE("bk") { check_single_term<term::bk>(); }
  SUBCASE("bv") { check_single_term<term::bv>(); }
  SUBCASE("bm1") { check_single_term<term::bm1>(); }
  SUBCASE("bLN1") { check_single_term<term::bLN1>(); }
  SUBCASE("bm2") { check_single_term<term::bm2>(); }
  SUBCASE("bm3") { check_single_term<term::bm3>(); }
  SUBCASE("bLN2") { check_single_term<term::bLN2>(); }
}

TEST_CASE("encoder layer: full_mask weight, gain and bias gradients match finite differences") {
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->h2.p);
    layer_fixture f(*drop);
    bert_params<double> g(f.cfg, true);
    const auto dinp = f.backward(g, full_mask{});
    const auto &pl = f.params(), &gl = g.layers[0];
    const std::size_t H = std::size_t(f.H), I = std::size_t(f.cfg.intermediate_size);
    auto loss = [&] { return f.loss(); };
    check_gradient("dinp", loss, f.x.data(), dinp.data(), dinp.size());
    check_gradient("Wqkv", loss, pl.Wqkv, gl.Wqkv, 3 * H * H);
    check_gradient("Wm1", loss, pl.Wm1, gl.Wm1, H * H);
    check_gradient("gLN1", loss, pl.gLN1, gl.gLN1, H);
    check_gradient("Wm2", loss, pl.Wm2, gl.Wm2, I * H);
    check_gradient("Wm3", loss, pl.Wm3, gl.Wm3, H * I);
    check_gradient("gLN2", loss, pl.gLN2, gl.gLN2, H);
    for (term t : layer_terms)
      check_gradient(std::string(term_name(t)), loss, pl.bias(t), gl.bias(t), term_size(f.cfg, t));
  }
}

TEST_CASE("encoder layer: the key bias gets no gradient") {
  // q_i·(k_j + b_k) = q_i·k_j + q_i·b_k: the second part is the same for every key j of row i,
  // i.e. a constant added to a whole softmax row, which the softmax cancels. So ∂loss/∂b_k is
  // exactly zero (the analytic value is rounding noise), while b_q, which multiplies a different
  // k_j in every logit, gets a real gradient.
  for (const auto* drop : {&no_dropout, &active_dropout}) {
    CAPTURE(drop->attn.p);
    layer_fixture f(*drop);
    bert_params<double> g(f.cfg, false);
    f.backward(g, bitfit_all{});
    const auto& gl = g.layers[0];
    const double nq = as_vector(gl.bq(), f.H).norm(), nk = as_vector(gl.bk(), f.H).norm();
    CHECK(nq > 1e-3);
    CHECK(nk < 1e-10 * nq);
  }
}

TEST_CASE("encoder layer: skipping the input gradient does not change the parameter gradients") {
  // One gradient buffer for both runs: Eigen's vectorised column sums peel a number of leading
  // elements that depends on the destination address, so only same-buffer results are bit-comparable.
  layer_fixture f(active_dropout);
  bert_params<double> g(f.cfg, false);
  f.backward(g, bitfit_all{});
  const auto with = g.data;
  f.backward(g, bitfit_all{}, /*want_dinp=*/false);
  CHECK(g.data == with);
}
