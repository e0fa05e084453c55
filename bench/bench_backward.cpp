// The backward of one encoder layer per mask policy, its ops one by one, and the whole encoder's
// backward with a first trainable layer above 0. Only the backward is timed: each forward runs
// once in set-up and keeps what its policy's backward reads (full fine-tuning also ctx, h3, h4).
//
//   BM_layer_backward/<model>/<B>x<T>/<mask>: encoder_layer_backward<Mask> of one layer, masks in
//     the order full (every dW: the baseline), bitfit_all, bitfit_bq_bm2, bq, bm2, frozen, so the
//     baseline heads each group. The layer is a middle one: its input gradient is computed, as
//     for every trained layer but the lowest. The encoder never runs a layer backward for frozen
//     (its backward stops at the head); that row is the cost of passing a gradient through a
//     layer with no parameter sums at all, the floor under every bias-only row.
//   BM_op_backward/<model>/<B>x<T>/<op>: each op's backward with every instance the layer runs,
//     so that the rows add up to about one layer: linear_dx (input gradients of W_m3, W_m2,
//     W_m1, W_qkv), linear_dW (their weight gradients: full only), attention, layernorm (the two
//     fused Add & Norm backwards without parameter sums, as frozen), layernorm_sums (the same
//     summing bLN2, bm3, bLN1, bm1 as bitfit_all does: the difference is what those sums cost),
//     gelu, bias_sums (bq, bk, bv, bm2: the sums bias_backward does outside the LayerNorms).
//   BM_encoder_backward/<model>/<B>x<T>/<mask>/first_trainable_layer:<l>: encoder_backward from a
//     gradient on every token's last hidden state. Layers below l are neither cached nor run
//     backward, so bitfit_all's time should fall with the layers run (counter `layers`); full
//     ignores first_trainable_layer (it trains every weight) and is there as the baseline.
//     rand_uniform and rand_row_col (weight_subset_mask) compute the weight gradient only at
//     their BitFit-sized subsets' entries: against full, what the dense dW GEMMs cost them.
//
// Shapes: BERT-base (H 768, A 12, I 3072) and MiniLM (H 384, A 12, I 1536), B x T = 16x64 and
// 32x128; the whole encoder at BERT-base (L 12) 16x64 only: at 32x128 the full baseline's caches
// and gradients take ~3.5 GB and its backward tens of seconds per iteration on two cores.
// Dropout as in training (0.1 on hidden states and attention probabilities): the backward
// regenerates the masks, which is part of its cost.
// Counters: GFLOP/s of the products the instantiation runs (2·N·in·out per linear input
// gradient, as much again per weight gradient in full only, 8·B·T²·H for attention; element-wise
// work is not counted, so a bias-only row and frozen count the same FLOPs); bytes/s for the
// element-wise ops (each array read or written once); tokens/s; cached floats per token.
// Threads: OMP_NUM_THREADS. On a machine whose cores are busy with other work, set it to 1: with
// 2 threads every parallel region's barrier waits for a descheduled thread, and the element-wise
// ops (many short regions) come out ten times slower than they are.
//   bench_backward --benchmark_filter='BM_(layer|op)_backward/base/16x64' --benchmark_min_time=0.2

#include "bench_common.hpp"

#include <bitfit/model/encoder.hpp>
#include <bitfit/train/param_subset.hpp>

#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using namespace bitfit;

namespace {

/// One benchmark's shape: the model's widths and B packed sequences of T tokens.
struct shape_case {
  const char* model;  ///< "base" or "minilm", as bench::shape
  int B, T;
  std::string label() const { return std::string(model) + "/" + std::to_string(B) + "x" + std::to_string(T); }
};

/// Dropout of a training step (HF's hidden_dropout_prob and attention_probs_dropout_prob).
const dropout_config train_drop{0.1, 0.1, 0x5EED};

// ---- FLOPs ----

/// One of the layer's four linears: (in, out), and whether the layer's backward accumulates its
/// input gradient (h3 and x also feed a residual, whose share is there first) or writes it.
struct linear_site {
  int in, out;
  bool accumulate;
};

/// The four linears in the order the layer's backward runs them: W_m3, W_m2, W_m1, W_qkv.
std::array<linear_site, 4> linear_sites(const bert_config& c) {
  const int H = c.hidden_size, I = c.intermediate_size;
  return {{{I, H, false}, {H, I, true}, {H, H, false}, {H, 3 * H, true}}};
}

/// One pass of products over the four linears (input gradients, or weight gradients), 2·N·in·out
/// each. Without W_qkv's: the lowest trained layer, whose input gradient nobody needs.
double linear_flops(const bert_config& c, int N, bool with_qkv = true) {
  double f = 0;
  for (const auto& l : linear_sites(c))
    if (with_qkv || l.out != 3 * c.hidden_size) f += 2.0 * N * l.in * l.out;
  return f;
}

/// dP = dctx V^T, dV = P^T dctx, dQ = dS K, dK = dS^T Q: four products of 2·T²·d per sequence and
/// head, A·d = H.
double attention_flops(const bert_config& c, int B, int T) { return 8.0 * B * T * T * c.hidden_size; }

/// Products of one layer's backward, weight gradients only in the full instantiation.
double layer_flops(const bert_config& c, int B, int T, bool weight_grads, bool input_grad) {
  const int N = B * T;
  return linear_flops(c, N, input_grad) + attention_flops(c, B, T) + (weight_grads ? linear_flops(c, N) : 0.0);
}

void set_rates(benchmark::State& state, int tokens, double flops) {
  using benchmark::Counter;
  state.counters["tokens/s"] = Counter(tokens, Counter::kIsIterationInvariantRate);
  if (flops > 0) state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["threads"] = omp_get_max_threads();
}

/// Times `run`, all of whose state lives in the caller.
template <class F>
void time_loop(benchmark::State& state, F&& run) {
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
}

// ---- One layer ----

/// The policies of the layer benchmarks, the baseline first. Each single term stands for the
/// others: within a layer, a bias-only mask decides only which parameter sums run.
template <class F>
void for_each_layer_mask(F&& f) {
  f.template operator()<full_mask>("full");
  f.template operator()<bitfit_all>("bitfit_all");
  f.template operator()<bitfit_bq_bm2>("bitfit_bq_bm2");
  f.template operator()<trainable_mask<term::bq>>("bq");
  f.template operator()<trainable_mask<term::bm2>>("bm2");
  f.template operator()<frozen_mask>("frozen");
}

template <mask_policy Mask>
void BM_layer_backward(benchmark::State& state, shape_case s) {
  bert_config c = bench::shape(s.model);
  c.num_hidden_layers = 1;  // one layer's parameters (beside the embedding tables, unused)
  const auto p = bench::random_params(c);
  bert_params<float> g(c, Mask::weight_grads);  // full: every weight's gradient; else the bias block
  const std::vector<int> offsets = bench::random_batch(s.B, s.T, c.vocab_size).offsets;
  const int N = s.B * s.T;
  const std::size_t NH = std::size_t(N) * c.hidden_size;
  const auto x = bench::random_floats(NH, 1);  // the layer input, at a LayerNorm output's scale
  const auto dout = bench::random_floats(NH, 2);
  buffer<float> out(NH), dinp(NH);
  layer_cache<float> cache;
  cache.resize(N, attention_cache_size(offsets, c.num_attention_heads), c, Mask::weight_grads);
  layer_scratch<float> scratch;
  scratch.resize(N, c, true);
  const layer_dropout drop = train_drop.layer(0);
  const auto& lp = p.layers[0];
  encoder_layer_forward<Mask>(out.data(), cache, x.data(), lp, offsets, c, scratch, drop);
  // The backward reads the cache and overwrites dinp and the scratch: every iteration does the
  // same work (the gradients in g just keep accumulating).
  time_loop(state, [&] {
    encoder_layer_backward<Mask>(dinp.data(), g.layers[0], dout.data(), cache, Mask::weight_grads ? x.data() : nullptr,
                                 lp, offsets, c, Mask{}, scratch, drop);
  });
  set_rates(state, N, layer_flops(c, s.B, s.T, Mask::weight_grads, true));
  state.counters["cached_floats/token"] = double(cache.floats()) / N;
}

// ---- The layer's ops one by one ----

enum class op { linear_dx, linear_dW, attention, layernorm, layernorm_sums, gelu, bias_sums };

const std::pair<const char*, op> ops[] = {
    {"linear_dx", op::linear_dx}, {"linear_dW", op::linear_dW},           {"attention", op::attention},
    {"layernorm", op::layernorm}, {"layernorm_sums", op::layernorm_sums}, {"gelu", op::gelu},
    {"bias_sums", op::bias_sums}};

/// The four linears' backward: input gradients (accumulated or written as the layer does) or
/// weight gradients, from random weights, output gradients and (for dW) inputs.
void time_linears(benchmark::State& state, const bert_config& c, int N, bool weight_grads) {
  struct arrays {
    linear_site site;
    buffer<float> W, dy, x, dx, dW;
  };
  std::vector<arrays> ls;
  for (const auto& l : linear_sites(c)) {
    const std::size_t in = std::size_t(l.in), out = std::size_t(l.out), n = std::size_t(N);
    ls.push_back({l, bench::random_floats(out * in, 1, 0.04f), bench::random_floats(n * out, 2),
                  weight_grads ? bench::random_floats(n * in, 3) : buffer<float>{},
                  buffer<float>(weight_grads ? 0 : n * in), buffer<float>(weight_grads ? out * in : 0)});
  }
  float* none = nullptr;  // no bias sum here (bias_sums times them), and dx or dW, not both
  time_loop(state, [&] {
    for (auto& l : ls) {
      if (weight_grads) {
        linear_backward<true>(none, l.dW.data(), none, l.dy.data(), l.x.data(), l.W.data(), N, l.site.in, l.site.out);
      } else {
        linear_backward<false>(l.dx.data(), none, none, l.dy.data(), none, l.W.data(), N, l.site.in, l.site.out,
                               nullptr, l.site.accumulate);
      }
    }
  });
}

void time_attention(benchmark::State& state, const bert_config& c, shape_case s) {
  const std::vector<int> offsets = bench::random_batch(s.B, s.T, c.vocab_size).offsets;
  const int N = s.B * s.T, H = c.hidden_size, A = c.num_attention_heads;
  const auto qkv = bench::random_floats(std::size_t(N) * 3 * H, 1), dctx = bench::random_floats(std::size_t(N) * H, 2);
  buffer<float> P(attention_cache_size(offsets, A)), ctx(std::size_t(N) * H), dqkv(qkv.size());
  const dropout_site drop = train_drop.layer(0).attn;
  attention_forward(ctx.data(), P.data(), qkv.data(), offsets, H, A, drop);  // P, as the forward caches it
  time_loop(state, [&] { attention_backward(dqkv.data(), dctx.data(), qkv.data(), P.data(), offsets, H, A, drop); });
}

/// The layer's two Add & Norm backwards: LN2 from dout into d_h (to W_m3) and d_sum (the
/// residual's share of dh3), then LN1 in place on d_sum, the residual's share going to dinp.
/// With `sums`, the bias sums bitfit_all fuses into them (bLN2, bm3, bLN1, bm1).
void time_layernorms(benchmark::State& state, const bert_config& c, int N, bool sums) {
  const int H = c.hidden_size;
  const std::size_t rows = std::size_t(N), NH = rows * std::size_t(H);
  const buffer<float> gain(std::size_t(H), 1.0f), bias(std::size_t(H), 0.0f);
  const auto x1 = bench::random_floats(NH, 1), x2 = bench::random_floats(NH, 2), dout = bench::random_floats(NH, 3);
  buffer<float> y(NH), xhat1(NH), xhat2(NH), rstd1(rows), rstd2(rows), d_h(NH), d_sum(NH), dinp(NH),
      db(4 * std::size_t(H), 0.0f);
  // x̂ and rstd as the forward caches them
  layernorm_forward(y.data(), xhat1.data(), rstd1.data(), x1.data(), gain.data(), bias.data(), N, H, c.layer_norm_eps);
  layernorm_forward(y.data(), xhat2.data(), rstd2.data(), x2.data(), gain.data(), bias.data(), N, H, c.layer_norm_eps);
  auto sum_into = [&](int k) { return sums ? db.data() + k * H : nullptr; };
  float* no_dg = nullptr;  // the gains are frozen: only full computes dg
  const layer_dropout drop = train_drop.layer(0);
  time_loop(state, [&] {
    residual_layernorm_backward<false>(d_h.data(), d_sum.data(), no_dg, sum_into(0), sum_into(1), dout.data(),
                                       xhat2.data(), rstd2.data(), gain.data(), N, H, drop.h5);
    residual_layernorm_backward<false>(d_sum.data(), dinp.data(), no_dg, sum_into(2), sum_into(3), d_sum.data(),
                                       xhat1.data(), rstd1.data(), gain.data(), N, H, drop.h2);
  });
}

void time_gelu(benchmark::State& state, const bert_config& c, int N) {
  const std::size_t n = std::size_t(N) * c.intermediate_size;
  const auto pre = bench::random_floats(n, 1, 6.0f), dh4 = bench::random_floats(n, 2);  // GELU input in [-3, 3)
  buffer<float> dpre(n);
  // Out of place, unlike the layer: in place, every iteration would multiply the gradient by
  // gelu' again, down to denormals.
  time_loop(state, [&] { gelu_backward(dpre.data(), dh4.data(), pre.data(), std::ptrdiff_t(n), c.activation()); });
}

/// db_q, db_k, db_v: column sums of the three blocks of dqkv (N, 3H); db_m2: of d(h4pre) (N, I).
void time_bias_sums(benchmark::State& state, const bert_config& c, int N) {
  const int H = c.hidden_size, I = c.intermediate_size;
  const auto dqkv = bench::random_floats(std::size_t(N) * 3 * H, 1), dpre = bench::random_floats(std::size_t(N) * I, 2);
  buffer<float> db(std::size_t(3 * H + I), 0.0f);
  time_loop(state, [&] {
    for (int j = 0; j < 3; ++j) bias_backward(db.data() + j * H, dqkv.data() + j * H, N, H, 3 * H);
    bias_backward(db.data() + 3 * H, dpre.data(), N, I);
  });
}

void BM_op_backward(benchmark::State& state, shape_case s, op o) {
  const bert_config c = bench::shape(s.model);
  const int N = s.B * s.T;
  const double NH = double(N) * c.hidden_size, NI = double(N) * c.intermediate_size, f32 = 4;
  double flops = 0, bytes = 0;
  switch (o) {
    case op::linear_dx:
    case op::linear_dW:
      time_linears(state, c, N, o == op::linear_dW);
      flops = linear_flops(c, N);
      break;
    case op::attention:
      time_attention(state, c, s);
      flops = attention_flops(c, s.B, s.T);
      break;
    case op::layernorm:
    case op::layernorm_sums:
      time_layernorms(state, c, N, o == op::layernorm_sums);
      bytes = 2 * 4 * f32 * NH;  // per LayerNorm: read dout, x̂; write dh, dres (the sums re-read)
      break;
    case op::gelu:
      time_gelu(state, c, N);
      bytes = 3 * f32 * NI;  // read dout, inp; write dinp
      break;
    case op::bias_sums:
      time_bias_sums(state, c, N);
      bytes = f32 * (3 * NH + NI);  // read dqkv, d(h4pre)
      break;
  }
  set_rates(state, N, flops);
  if (bytes > 0) state.SetBytesProcessed(std::int64_t(bytes) * state.iterations());
}

// ---- The whole encoder ----

/// `subset` for weight_subset_mask: "uniform" or "row_col" (the trainer's BitFit-sized subsets).
template <mask_policy Mask>
void BM_encoder_backward(benchmark::State& state, shape_case s, int first_trainable_layer, std::string subset = "") {
  const bert_config c = bench::shape(s.model);
  const auto p = bench::random_params(c);
  bert_params<float> g(c, Mask::weight_grads);
  Mask mask{};
  std::vector<unsigned char> keep;
  if constexpr (is_weight_subset<Mask>) {
    keep = subset == "row_col" ? random_row_col_subset(p.layout, p.layout.bias_size, 42)
                               : random_uniform_subset(p.layout, p.layout.bias_size, 42);
    mask.keep = keep.data(), mask.grad_base = g.data.data();
  }
  const auto batch = bench::random_batch(s.B, s.T, c.vocab_size);
  const int N = batch.tokens(), L = c.num_hidden_layers;
  encoder_state<float> st;
  st.run_pooler = false;  // the pooler is a sequence head's business; the backward starts at dlast
  encoder_forward(st, p, batch, mask, train_drop, first_trainable_layer);
  const auto dlast = bench::random_floats(std::size_t(N) * c.hidden_size, 4);
  time_loop(state, [&] { encoder_backward(g, st, p, batch, dlast.data(), mask, train_drop); });
  // The layers run backward: the lowest trained one and those above it. The lowest computes no
  // input gradient unless the embedding LayerNorm below it trains (st.lowest = -1). A weight
  // subset's dot products (~0.1% of the dense dW) are not counted.
  const int stop = std::max(st.lowest, 0);
  constexpr bool dense_dW = Mask::weight_grads && !is_weight_subset<Mask>;
  double flops = 0;
  for (int l = stop; l < L; ++l) flops += layer_flops(c, s.B, s.T, dense_dW, l > stop || st.lowest < 0);
  set_rates(state, N, flops);
  state.counters["layers"] = L - stop;
  state.counters["cached_floats/token"] = double(st.saved_floats()) / N;
}

template <class... Args>
void add(const std::string& name, Args&&... args) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...)->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  // Per shape: the layer under each mask, then its ops, so the breakdown sits under the layer.
  const shape_case layer_shapes[] = {{"base", 16, 64}, {"base", 32, 128}, {"minilm", 16, 64}, {"minilm", 32, 128}};
  for (const shape_case& s : layer_shapes) {
    for_each_layer_mask([&]<class Mask>(const char* mask) {
      add("BM_layer_backward/" + s.label() + "/" + mask, BM_layer_backward<Mask>, s);
    });
    for (const auto& [name, o] : ops) add("BM_op_backward/" + s.label() + "/" + name, BM_op_backward, s, o);
  }
  const shape_case encoder_shape{"base", 16, 64};
  const std::string encoder = "BM_encoder_backward/" + encoder_shape.label();
  add(encoder + "/full/first_trainable_layer:0", BM_encoder_backward<full_mask>, encoder_shape, 0, "");
  for (const char* subset : {"uniform", "row_col"})
    add(encoder + "/rand_" + subset + "/first_trainable_layer:0", BM_encoder_backward<weight_subset_mask>, encoder_shape,
        0, std::string(subset));
  for (int l : {0, 6, 11})
    add(encoder + "/bitfit_all/first_trainable_layer:" + std::to_string(l), BM_encoder_backward<bitfit_all>,
        encoder_shape, l, "");
  return bench::run_benchmarks(argc, argv);
}
