// One training step (forward + loss + backward + AdamW) for each fine-tune type, beside the
// forward pass alone, at BERT-base 16x64 and 32x128 and MiniLM 32x64, with the frozen matrices in
// fp32 and in bf16 (where the CPU has bf16 matrix instructions). The bias-only steps are the fused
// path (no dW code at all); full_ft (every dW) is their baseline, and rand_uniform's (dW only at
// its BitFit-sized subset of entries) is measured against full_ft's. One benchmark per process for
// peak memory (bench/compare.py runs each alone):
//   bench_train --benchmark_filter='^BM_step/bitfit/base/16x64/fp32/'
// Counters: tokens/s; GFLOP/s achieved (model FLOPs of the step: dense layers and attention,
// forward, input gradients and, for full_ft, weight gradients); floats kept for the backward per
// token; RSS after set-up and the peak since then (set-up transients excluded, as the peer
// does), in MiB. One untimed warm-up step first, as the peer has, then 3 timed steps: a fixed
// count, so the model is built once per process and the memory figures are of one run.

#include "bench_common.hpp"

#include <bitfit/train/trainer.hpp>

#include <benchmark/benchmark.h>
#include <omp.h>

#include <string>

using namespace bitfit;

namespace {

enum class mode { forward, bitfit, bq_bm2, frozen, full_ft, rand_uniform };

/// Model FLOPs of one step: per layer, the dense layers cost 2·N·P (P = 4H² + 2HI weights) and
/// attention 4·B·T²·H forward; a backward costs the same again for the input gradients (attention
/// twice that), and full fine-tuning once more for the weight gradients (rand_uniform's dot
/// products at its ~0.1% of the weights are not counted).
double step_flops(const bert_config& c, int B, int T, mode m) {
  const double N = double(B) * T, H = c.hidden_size, P = 4 * H * H + 2 * H * c.intermediate_size;
  const double dense = 2 * N * P, attn = 4.0 * B * double(T) * T * H, L = c.num_hidden_layers;
  const double fwd = L * (dense + attn);
  switch (m) {
    case mode::forward:
    case mode::frozen: return fwd;
    case mode::bitfit:
    case mode::bq_bm2:
    case mode::rand_uniform: return fwd + L * (dense + 2 * attn);
    case mode::full_ft: return fwd + L * (2 * dense + 2 * attn);
  }
  return fwd;
}

std::vector<encoded_example> examples_of(const token_batch& batch, int B, int T) {
  std::vector<encoded_example> xs;
  for (int b = 0; b < B; ++b) {
    encoded_example e;
    e.ids.assign(batch.ids.begin() + b * T, batch.ids.begin() + (b + 1) * T);
    e.types.assign(std::size_t(T), 0);
    e.label = b % 2;
    xs.push_back(std::move(e));
  }
  return xs;
}

void step_bench(benchmark::State& state, const std::string& shape, int B, int T, mode m, precision prec) {
  const auto c = bench::shape(shape);
  sequence_classifier model{bench::random_params(c), task_head<float>::init(2, c.hidden_size, 3)};
  if (prec == precision::bf16) model.params.store_weights_bf16();
  const auto batch = bench::random_batch(B, T, c.vocab_size);
  const auto xs = examples_of(batch, B, T);
  std::vector<std::size_t> idx(static_cast<std::size_t>(B));
  for (int b = 0; b < B; ++b) idx[std::size_t(b)] = std::size_t(b);
  train_options opt;
  opt.type = m == mode::full_ft        ? fine_tune_type::full_ft
             : m == mode::rand_uniform ? fine_tune_type::rand_uniform
             : m == mode::frozen       ? fine_tune_type::frozen
                                       : fine_tune_type::bitfit;
  opt.terms = runtime_mask{m == mode::bq_bm2 ? bitfit_bq_bm2::bits() : bitfit_all::bits()};
  if (m == mode::forward) {
    encoder_state<float> st;
    bench::reset_peak_rss();
    const double base = bench::current_rss_mib();
    predict_logits(model, batch, st);  // warm-up: buffers, oneDNN kernels (as the peer's warm-up)
    for (auto _ : state) benchmark::DoNotOptimize(predict_logits(model, batch, st).data());
    state.counters["base_rss_MiB"] = base;
    state.counters["saved_floats_per_token"] = 0;
  } else {
    with_trainer(model, opt, [&](auto& tr) {
      bench::reset_peak_rss();
    const double base = bench::current_rss_mib();
      long t = 0;
      tr.step(xs, idx, ++t, 1000000);  // warm-up
      for (auto _ : state) benchmark::DoNotOptimize(tr.step(xs, idx, ++t, 1000000));
      state.counters["base_rss_MiB"] = base;
      state.counters["saved_floats_per_token"] = double(tr.state().saved_floats()) / (B * T);
      state.counters["trained_params"] = double(tr.trained_parameters());
      return 0;
    });
  }
  state.counters["tokens/s"] = benchmark::Counter(double(B) * T, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(step_flops(c, B, T, m) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
  state.counters["threads"] = omp_get_max_threads();
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<const char*, mode> modes[] = {{"forward", mode::forward}, {"bitfit", mode::bitfit},
                                                {"bitfit_bq_bm2", mode::bq_bm2}, {"frozen", mode::frozen},
                                                {"full_ft", mode::full_ft}, {"rand_uniform", mode::rand_uniform}};
  const std::tuple<const char*, int, int> shapes[] = {{"base", 16, 64}, {"base", 32, 128}, {"minilm", 32, 64}};
  for (const auto& [shape, B, T] : shapes)
    for (const auto& [name, m] : modes)
      for (const precision prec : {precision::fp32, precision::bf16}) {
        if (prec == precision::bf16 && (!bf16_available() || m == mode::full_ft || m == mode::rand_uniform)) continue;
        const std::string id = std::string("BM_step/") + name + "/" + shape + "/" + std::to_string(B) + "x" +
                               std::to_string(T) + "/" + std::string(precision_name(prec));
        benchmark::RegisterBenchmark(id.c_str(), step_bench, std::string(shape), B, T, m, prec)
            ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
      }
  return bench::run_benchmarks(argc, argv);
}
