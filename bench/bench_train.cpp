// One training step (forward + loss + backward + AdamW) at the default model's shape,
// B x T = 32 x 64, for each fine-tune type, beside the forward pass alone. The bias-only step is
// the fused path; full_ft (all dW) is its baseline. Run one mode per process for peak memory:
//   bench_train --benchmark_filter='BM_step/bitfit$'   (bench/compare.py does this for every mode)
// Counters: tokens/s, saved floats per token (what forward keeps for backward), base RSS after
// model set-up and peak RSS of the process, in MiB.

#include "bench_common.hpp"

#include <bitfit/train/trainer.hpp>

#include <benchmark/benchmark.h>
#include <omp.h>

#include <fstream>
#include <string>

using namespace bitfit;

namespace {

double current_rss_mib() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return double(resident) * 4096.0 / (1024.0 * 1024.0);
}

void step_bench(benchmark::State& state, fine_tune_type type, runtime_mask terms, bool forward_only) {
  const auto c = bench::shape("minilm");
  const int B = 32, T = 64;
  sequence_classifier model{bench::random_params(c), task_head<float>::init(2, c.hidden_size, 3)};
  std::vector<encoded_example> xs;
  const auto batch = bench::random_batch(B, T, c.vocab_size);
  for (int b = 0; b < B; ++b) {
    encoded_example e;
    e.ids.assign(batch.ids.begin() + b * T, batch.ids.begin() + (b + 1) * T);
    e.types.assign(std::size_t(T), 0);
    e.label = b % 2;
    xs.push_back(std::move(e));
  }
  std::vector<std::size_t> idx(static_cast<std::size_t>(B));
  for (int b = 0; b < B; ++b) idx[std::size_t(b)] = std::size_t(b);
  train_options opt;
  opt.type = type;
  opt.terms = terms;
  if (forward_only) {
    encoder_state<float> st;
    const double base = current_rss_mib();
    for (auto _ : state) benchmark::DoNotOptimize(predict_logits(model, batch, st).data());
    state.counters["base_rss_MiB"] = base;
    state.counters["saved_floats_per_token"] = 0;
  } else {
    with_trainer(model, opt, [&](auto& tr) {
      const double base = current_rss_mib();
      long t = 0;
      for (auto _ : state) benchmark::DoNotOptimize(tr.step(xs, idx, ++t, 1000000));
      state.counters["base_rss_MiB"] = base;
      state.counters["saved_floats_per_token"] = double(tr.state().saved_floats()) / (B * T);
      state.counters["trained_params"] = double(tr.trained_parameters());
      return 0;
    });
  }
  state.counters["tokens/s"] = benchmark::Counter(double(B) * T, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
  state.counters["threads"] = omp_get_max_threads();
}

const runtime_mask all_biases{bitfit_all::bits()};

}  // namespace

BENCHMARK_CAPTURE(step_bench, forward, fine_tune_type::bitfit, all_biases, true)->Name("BM_step/forward")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK_CAPTURE(step_bench, bitfit, fine_tune_type::bitfit, all_biases, false)->Name("BM_step/bitfit")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK_CAPTURE(step_bench, bq_bm2, fine_tune_type::bitfit, runtime_mask{bitfit_bq_bm2::bits()}, false)->Name("BM_step/bitfit_bq_bm2")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK_CAPTURE(step_bench, frozen, fine_tune_type::frozen, runtime_mask{}, false)->Name("BM_step/frozen")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK_CAPTURE(step_bench, full_ft, fine_tune_type::full_ft, all_biases, false)->Name("BM_step/full_ft")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

BENCHMARK_MAIN();
