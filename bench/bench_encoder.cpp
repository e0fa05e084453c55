// Encoder forward throughput (tokens/s) at the default model's shape and at BERT-base shape,
// with the machine's GEMM peak per backend as context. Shapes from issue #2:
// B x T = 32 x 64 and 8 x 128. Threads: OMP_NUM_THREADS (2 on the project's machines).
// Fused paths beside their baselines: one (3H, H) GEMM for q, k, v versus three (H, H) GEMMs.

#include "bench_common.hpp"

#include <benchmark/benchmark.h>
#include <omp.h>

using namespace bitfit;

// The GEMM peak of this binary on this CPU, n x n x n, per backend: what the step benchmarks'
// achieved GFLOP/s are measured against. Eigen's kernels are those of the compile flags; oneDNN's
// are chosen at run time (see gemm.hpp).
static void BM_gemm(benchmark::State& state, gemm_backend backend, precision prec) {
  const int n = int(state.range(0));
  if ((backend == gemm_backend::onednn || prec == precision::bf16) && onednn_isa() == "none") {
    state.SkipWithError("built without oneDNN");
    return;
  }
  if (prec == precision::bf16 && !bf16_available()) {
    state.SkipWithError("no bf16 matrix instructions on this CPU");
    return;
  }
  const gemm_backend before = current_gemm_backend();
  set_gemm_backend(backend);
  row_matrix<float> a = row_matrix<float>::Random(n, n), b = row_matrix<float>::Random(n, n), c(n, n);
  buffer<bf16> b16(std::size_t(n) * n);
  convert_to_bf16(b16.data(), b.data(), b16.size());
  for (auto _ : state) {
    if (prec == precision::bf16) gemm_abt(c.data(), a.data(), b16.data(), n, n, n, false);
    else gemm_abt(c.data(), a.data(), b.data(), n, n, n, false);
    benchmark::DoNotOptimize(c.data());
  }
  set_gemm_backend(before);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = omp_get_max_threads();
}
BENCHMARK_CAPTURE(BM_gemm, eigen_fp32, gemm_backend::eigen, precision::fp32)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_gemm, onednn_fp32, gemm_backend::onednn, precision::fp32)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_gemm, onednn_bf16, gemm_backend::onednn, precision::bf16)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_forward(benchmark::State& state, const char* shape_name) {
  const auto c = bench::shape(shape_name);
  const auto p = bench::random_params(c);
  const int B = int(state.range(0)), T = int(state.range(1));
  const auto batch = bench::random_batch(B, T, c.vocab_size);
  encoder_state<float> st;
  for (auto _ : state) {
    encoder_forward(st, p, batch, no_grad{});
    benchmark::DoNotOptimize(st.pooled.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(B) * T, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = omp_get_max_threads();
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
}
BENCHMARK_CAPTURE(BM_forward, minilm, "minilm")->Args({32, 64})->Args({8, 128})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK_CAPTURE(BM_forward, base, "base")->Args({32, 64})->Args({8, 128})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// q, k, v projections: the fused (3H, H) GEMM our layer uses, and the three-GEMM baseline.
static void BM_qkv(benchmark::State& state, bool fused) {
  const auto c = bench::shape("minilm");
  const auto p = bench::random_params(c);
  const int N = 32 * 64, H = c.hidden_size;
  std::vector<float> x(std::size_t(N) * H, 0.5f), out(std::size_t(N) * 3 * H);
  const auto& l = p.layers[0];
  for (auto _ : state) {
    if (fused) {
      linear_forward(out.data(), x.data(), l.Wqkv, l.bqkv, N, H, 3 * H);
    } else {
      for (int j = 0; j < 3; ++j)
        linear_forward(out.data() + std::size_t(j) * N * H, x.data(), l.Wqkv + std::size_t(j) * H * H, l.bqkv + j * H, N, H, H);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(N), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_qkv, fused, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_qkv, separate_baseline, false)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) { return bench::run_benchmarks(argc, argv); }
