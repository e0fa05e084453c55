// Element-wise ops and attention at the encoder's shapes, each library path beside its baseline:
//   GELU forward / backward: the scalar std::erf / std::tanh loops the library used to run
//     (reference_*) against the vectorised blocks; bias add + GELU unfused against
//     bias_gelu_forward.
//   The tail of a sub-layer, LN(dropout(h + b) + res): the encoder's former four passes with the
//     former ops (reference_*), the same four passes with today's ops, and
//     residual_layernorm_forward; likewise backward (LN backward, then dropout backward).
//   Dropout alone: the former double-compare loop against the vectorised mask.
//   Attention forward / backward, with and without attention dropout.
//   A dense layer's product for batch-independent inference: gemm_abt_fixed_order (each row on
//     its own, where gemm_rows_stable() is false: AVX2, Eigen) beside the GEMM backend's
//     gemm_abt (what training and AVX-512 inference use); counter: FLOP/s.
// Shapes: BERT-base (H = 768, I = 3072) and MiniLM (H = 384, I = 1536), N = 1024 and 4096 tokens
// (attention: sequences of T = 128). Counters: bytes/s (each array read or written once) and
// items/s (elements, or tokens for attention). Threads: OMP_NUM_THREADS.
//   bench_ops --benchmark_filter='BM_gelu_forward'

#include "bench_common.hpp"

#include <bitfit/ops/attention.hpp>
#include <bitfit/ops/dropout.hpp>
#include <bitfit/ops/gelu.hpp>
#include <bitfit/ops/gemm.hpp>
#include <bitfit/ops/layernorm.hpp>
#include <bitfit/ops/residual_layernorm.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

using namespace bitfit;

namespace {

// ---- Baselines: the library's loops before vectorisation, verbatim but for the names. ----

/// Scalar GELU, one std::erf / std::tanh call per element.
template <class T>
void reference_gelu_forward(T* out, const T* inp, std::ptrdiff_t n, gelu_kind kind) {
  using namespace detail;
  if (kind == gelu_kind::erf) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = T(0.5) * inp[i] * (T(1) + std::erf(inp[i] * inv_sqrt2<T>));
  } else {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const T x = inp[i];
      out[i] = T(0.5) * x * (T(1) + std::tanh(sqrt_2_over_pi<T> * (x + gelu_tanh_c<T> * x * x * x)));
    }
  }
}

template <class T>
void reference_gelu_backward(T* dinp, const T* dout, const T* inp, std::ptrdiff_t n, gelu_kind kind) {
  using namespace detail;
  if (kind == gelu_kind::erf) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const T x = inp[i];
      const T cdf = T(0.5) * (T(1) + std::erf(x * inv_sqrt2<T>));
      const T pdf = inv_sqrt2pi<T> * std::exp(T(-0.5) * x * x);
      dinp[i] = dout[i] * (cdf + x * pdf);
    }
  } else {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const T x = inp[i];
      const T t = std::tanh(sqrt_2_over_pi<T> * (x + gelu_tanh_c<T> * x * x * x));
      const T du = sqrt_2_over_pi<T> * (T(1) + T(3) * gelu_tanh_c<T> * x * x);
      dinp[i] = dout[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }
  }
}

/// Dropout comparing a uint64 → double conversion per element.
template <class T>
void reference_dropout_forward(T* out, const T* inp, std::ptrdiff_t n, const dropout_site& s) {
  const T scale = T(1.0 / (1.0 - s.p));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = dropout_keep(s, std::uint64_t(i)) ? inp[i] * scale : T(0);
}

/// LayerNorm with serial double sums per row.
template <class T>
void reference_layernorm_forward(T* out, T* xhat, T* rstd, const T* inp, const T* g, const T* b, int N,
                                 int H, double eps) {
#pragma omp parallel for schedule(static) if (N > 64)
  for (int n = 0; n < N; ++n) {
    const T* x = inp + std::ptrdiff_t(n) * H;
    double sum = 0;
    for (int h = 0; h < H; ++h) sum += double(x[h]);
    const double mu = sum / H;
    double var = 0;
    for (int h = 0; h < H; ++h) var += (double(x[h]) - mu) * (double(x[h]) - mu);
    var /= H;
    const T mean = T(mu);
    const T r = T(1.0 / std::sqrt(var + eps));
    T* xh = xhat + std::ptrdiff_t(n) * H;
    T* y = out + std::ptrdiff_t(n) * H;
    for (int h = 0; h < H; ++h) {
      xh[h] = (x[h] - mean) * r;
      y[h] = g[h] * xh[h] + b[h];
    }
    rstd[n] = r;
  }
}

/// LayerNorm backward with serial row sums and a serial token reduction (bias gradient only).
template <class T>
void reference_layernorm_backward(T* dinp, T* db, const T* dout, const T* xhat, const T* rstd, const T* g,
                                  int N, int H) {
#pragma omp parallel for schedule(static) if (N > 64)
  for (int n = 0; n < N; ++n) {
    const T* dy = dout + std::ptrdiff_t(n) * H;
    const T* xh = xhat + std::ptrdiff_t(n) * H;
    T mean_d = 0, mean_dx = 0;
    for (int h = 0; h < H; ++h) {
      const T d = dy[h] * g[h];
      mean_d += d;
      mean_dx += d * xh[h];
    }
    mean_d /= T(H);
    mean_dx /= T(H);
    T* dx = dinp + std::ptrdiff_t(n) * H;
    for (int h = 0; h < H; ++h) dx[h] += rstd[n] * (dy[h] * g[h] - mean_d - xh[h] * mean_dx);
  }
  for (int n = 0; n < N; ++n) {
    const T* dy = dout + std::ptrdiff_t(n) * H;
    for (int h = 0; h < H; ++h) db[h] += dy[h];
  }
}

// ---- Set-up ----

struct shape {
  int H, I, A;
};
shape shape_of(const std::string& name) { return name == "minilm" ? shape{384, 1536, 12} : shape{768, 3072, 12}; }

/// n floats in [-3, 3) from the counter hash (values only matter for GELU's branches).
/// GELU inputs and gradients in [-3, 3): where the approximations differ.
std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  bench::fill_random(v, seed, 6.0f);
  return v;
}

void set_rates(benchmark::State& state, double items, double bytes) {
  state.SetItemsProcessed(std::int64_t(items) * state.iterations());
  state.SetBytesProcessed(std::int64_t(bytes) * state.iterations());
}

const dropout_site train_drop{0.1, 0x5EED};
constexpr double ln_eps = 1e-12;

// ---- GELU ----

enum class gelu_impl { reference_scalar, vectorised };

void BM_gelu_forward(benchmark::State& state, const char* model, gelu_kind kind, gelu_impl impl) {
  const int N = int(state.range(0)), I = shape_of(model).I;
  const std::ptrdiff_t n = std::ptrdiff_t(N) * I;
  const auto x = random_floats(std::size_t(n), 1);
  std::vector<float> y(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if (impl == gelu_impl::reference_scalar) {
      reference_gelu_forward(y.data(), x.data(), n, kind);
    } else {
      gelu_forward(y.data(), x.data(), n, kind);
    }
    benchmark::DoNotOptimize(y.data());
  }
  set_rates(state, double(n), 2.0 * 4 * double(n));
}

void BM_gelu_backward(benchmark::State& state, const char* model, gelu_kind kind, gelu_impl impl) {
  const int N = int(state.range(0)), I = shape_of(model).I;
  const std::ptrdiff_t n = std::ptrdiff_t(N) * I;
  const auto x = random_floats(std::size_t(n), 1), dy = random_floats(std::size_t(n), 2);
  std::vector<float> dx(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if (impl == gelu_impl::reference_scalar) {
      reference_gelu_backward(dx.data(), dy.data(), x.data(), n, kind);
    } else {
      gelu_backward(dx.data(), dy.data(), x.data(), n, kind);
    }
    benchmark::DoNotOptimize(dx.data());
  }
  set_rates(state, double(n), 3.0 * 4 * double(n));
}

enum class bias_gelu_impl { unfused_reference, unfused, fused };

/// h4pre = x W_m2^T + bm2, h4 = gelu(h4pre), from the GEMM output x (read, not overwritten, so
/// every iteration sees the same values: std::erf's speed depends on them).
void BM_bias_gelu(benchmark::State& state, const char* model, bias_gelu_impl impl) {
  const int N = int(state.range(0)), I = shape_of(model).I;
  const std::ptrdiff_t n = std::ptrdiff_t(N) * I;
  const auto x = random_floats(std::size_t(n), 1), b = random_floats(std::size_t(I), 3);
  std::vector<float> pre(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if (impl == bias_gelu_impl::fused) {
      bias_gelu_forward(y.data(), pre.data(), x.data(), b.data(), N, I, gelu_kind::erf);
    } else {
      // linear_forward's bias add
      as_matrix(pre.data(), N, I) = as_matrix(x.data(), N, I).rowwise() + as_vector(b.data(), I).transpose();
      if (impl == bias_gelu_impl::unfused) {
        gelu_forward(y.data(), pre.data(), n, gelu_kind::erf);
      } else {
        reference_gelu_forward(y.data(), pre.data(), n, gelu_kind::erf);
      }
    }
    benchmark::DoNotOptimize(y.data());
  }
  set_rates(state, double(n), 3.0 * 4 * double(n));  // read x, write pre and out
}

// ---- Bias + dropout + residual + LayerNorm ----

enum class tail_impl { unfused_reference, unfused, fused };

struct tail_case {
  int N, H;
  std::vector<float> h0, h, b, res, g, bLN, out, xhat, rstd, dout, dsum, dh, dg, dbLN, db;
  tail_case(int n, int hidden)
      : N(n), H(hidden), h0(random_floats(std::size_t(n) * hidden, 1)), h(h0),
        b(random_floats(std::size_t(hidden), 2)), res(random_floats(std::size_t(n) * hidden, 3)),
        g(std::size_t(hidden), 1.0f), bLN(random_floats(std::size_t(hidden), 4)), out(h.size()), xhat(h.size()),
        rstd(std::size_t(n)), dout(random_floats(h.size(), 5)), dsum(h.size()), dh(h.size()), dg(std::size_t(hidden)),
        dbLN(std::size_t(hidden)), db(std::size_t(hidden)) {}
};

/// out = LN(dropout(h + b) + res) as the encoder computes h3 from the W_m1 output.
void BM_residual_layernorm_forward(benchmark::State& state, const char* model, tail_impl impl, bool dropping) {
  const int N = int(state.range(0)), H = shape_of(model).H;
  tail_case c(N, H);
  const dropout_site drop = dropping ? train_drop : dropout_site{};
  const std::ptrdiff_t NH = std::ptrdiff_t(N) * H;
  for (auto _ : state) {
    if (impl == tail_impl::fused) {
      residual_layernorm_forward(c.out.data(), c.xhat.data(), c.rstd.data(), c.h0.data(), c.b.data(), c.res.data(),
                                 c.g.data(), c.bLN.data(), N, H, ln_eps, drop);
    } else {
      // The bias add reads the GEMM output h0 (in the encoder it updates it in place), so every
      // iteration starts from the same values.
      as_matrix(c.h.data(), N, H) = as_matrix(c.h0.data(), N, H).rowwise() + as_vector(c.b.data(), H).transpose();
      if (impl == tail_impl::unfused) {
        dropout_forward(c.h.data(), c.h.data(), NH, drop);
      } else if (drop.active()) {
        reference_dropout_forward(c.h.data(), c.h.data(), NH, drop);
      }
      as_matrix(c.h.data(), N, H) += as_matrix(c.res.data(), N, H);
      if (impl == tail_impl::unfused) {
        layernorm_forward(c.out.data(), c.xhat.data(), c.rstd.data(), c.h.data(), c.g.data(), c.bLN.data(), N, H, ln_eps);
      } else {
        reference_layernorm_forward(c.out.data(), c.xhat.data(), c.rstd.data(), c.h.data(), c.g.data(), c.bLN.data(),
                                    N, H, ln_eps);
      }
    }
    benchmark::DoNotOptimize(c.out.data());
  }
  set_rates(state, double(NH), 4.0 * 4 * double(NH));  // read h, res; write out, x̂
}

/// dh' = LN backward (into a zeroed buffer), dh = dropout'(dh'), dbLN += Σ dout, as the encoder's
/// backward through LN2 and the h5 dropout.
void BM_residual_layernorm_backward(benchmark::State& state, const char* model, tail_impl impl, bool dropping) {
  const int N = int(state.range(0)), H = shape_of(model).H;
  tail_case c(N, H);
  const dropout_site drop = dropping ? train_drop : dropout_site{};
  const std::ptrdiff_t NH = std::ptrdiff_t(N) * H;
  residual_layernorm_forward(c.out.data(), c.xhat.data(), c.rstd.data(), c.h.data(), c.b.data(), c.res.data(),
                             c.g.data(), c.bLN.data(), N, H, ln_eps, drop);
  for (auto _ : state) {
    if (impl == tail_impl::fused) {
      residual_layernorm_backward<false>(c.dh.data(), c.dsum.data(), c.dg.data(), c.dbLN.data(),
                                         static_cast<float*>(nullptr), c.dout.data(), c.xhat.data(), c.rstd.data(),
                                         c.g.data(), N, H, drop);
    } else {
      std::fill(c.dsum.begin(), c.dsum.end(), 0.0f);
      if (impl == tail_impl::unfused) {
        layernorm_backward<false>(c.dsum.data(), c.dg.data(), c.dbLN.data(), c.dout.data(), c.xhat.data(),
                                  c.rstd.data(), c.g.data(), N, H);
        dropout_backward(c.dh.data(), c.dsum.data(), NH, drop);
      } else {
        reference_layernorm_backward(c.dsum.data(), c.dbLN.data(), c.dout.data(), c.xhat.data(), c.rstd.data(),
                                     c.g.data(), N, H);
        if (drop.active()) {
          reference_dropout_forward(c.dh.data(), c.dsum.data(), NH, drop);
        } else {
          std::copy(c.dsum.begin(), c.dsum.end(), c.dh.begin());
        }
      }
    }
    benchmark::DoNotOptimize(c.dh.data());
  }
  set_rates(state, double(NH), 4.0 * 4 * double(NH));  // read dout, x̂; write dres, dh
}

// ---- Dropout alone ----

void BM_dropout_forward(benchmark::State& state, bool reference) {
  const std::ptrdiff_t n = std::ptrdiff_t(state.range(0)) * 768;
  const auto x = random_floats(std::size_t(n), 1);
  std::vector<float> y(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if (reference) {
      reference_dropout_forward(y.data(), x.data(), n, train_drop);
    } else {
      dropout_forward(y.data(), x.data(), n, train_drop);
    }
    benchmark::DoNotOptimize(y.data());
  }
  set_rates(state, double(n), 2.0 * 4 * double(n));
}

// ---- Attention ----

struct attention_case {
  std::vector<int> offsets;
  std::vector<float> qkv, ctx, P, dctx, dqkv;
  attention_case(int N, int T, int H, int A) {
    for (int s = 0; s <= N; s += T) offsets.push_back(s);
    qkv = random_floats(std::size_t(N) * 3 * H, 1);
    ctx.resize(std::size_t(N) * H);
    P.resize(attention_cache_size(offsets, A));
    dctx = random_floats(std::size_t(N) * H, 2);
    dqkv.resize(qkv.size());
  }
};

void BM_attention(benchmark::State& state, const char* model, bool backward, bool dropping) {
  const int N = int(state.range(0)), T = 128;
  const auto s = shape_of(model);
  attention_case c(N, T, s.H, s.A);
  const dropout_site drop = dropping ? train_drop : dropout_site{};
  attention_forward(c.ctx.data(), c.P.data(), c.qkv.data(), c.offsets, s.H, s.A, drop);
  for (auto _ : state) {
    if (backward) {
      attention_backward(c.dqkv.data(), c.dctx.data(), c.qkv.data(), c.P.data(), c.offsets, s.H, s.A, drop);
      benchmark::DoNotOptimize(c.dqkv.data());
    } else {
      attention_forward(c.ctx.data(), c.P.data(), c.qkv.data(), c.offsets, s.H, s.A, drop);
      benchmark::DoNotOptimize(c.ctx.data());
    }
  }
  state.SetItemsProcessed(std::int64_t(N) * state.iterations());  // tokens
}

/// out (N, O) = inp (N, I) · W^T at a dense layer's shape, by the row-independent product or by
/// the backend's GEMM (its baseline).
void BM_dense_product(benchmark::State& state, int O, int I, bool fixed_order) {
  const int N = int(state.range(0));
  const auto inp = random_floats(std::size_t(N) * I, 1), W = random_floats(std::size_t(O) * I, 2);
  std::vector<float> out(std::size_t(N) * O);
  for (auto _ : state) {
    if (fixed_order) gemm_abt_fixed_order(out.data(), inp.data(), W.data(), N, O, I);
    else gemm_abt(out.data(), inp.data(), W.data(), N, O, I, false);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * N * O * I * double(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

#define BITFIT_TOKENS ->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime()

BENCHMARK_CAPTURE(BM_gelu_forward, base_erf_reference_scalar, "base", gelu_kind::erf, gelu_impl::reference_scalar) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_forward, base_erf_vectorised, "base", gelu_kind::erf, gelu_impl::vectorised) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_forward, base_tanh_reference_scalar, "base", gelu_kind::tanh, gelu_impl::reference_scalar) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_forward, base_tanh_vectorised, "base", gelu_kind::tanh, gelu_impl::vectorised) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_forward, minilm_erf_reference_scalar, "minilm", gelu_kind::erf, gelu_impl::reference_scalar) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_forward, minilm_erf_vectorised, "minilm", gelu_kind::erf, gelu_impl::vectorised) BITFIT_TOKENS;

BENCHMARK_CAPTURE(BM_gelu_backward, base_erf_reference_scalar, "base", gelu_kind::erf, gelu_impl::reference_scalar) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_backward, base_erf_vectorised, "base", gelu_kind::erf, gelu_impl::vectorised) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_backward, base_tanh_reference_scalar, "base", gelu_kind::tanh, gelu_impl::reference_scalar) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_gelu_backward, base_tanh_vectorised, "base", gelu_kind::tanh, gelu_impl::vectorised) BITFIT_TOKENS;

BENCHMARK_CAPTURE(BM_bias_gelu, base_unfused_reference, "base", bias_gelu_impl::unfused_reference) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_bias_gelu, base_unfused, "base", bias_gelu_impl::unfused) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_bias_gelu, base_fused, "base", bias_gelu_impl::fused) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_bias_gelu, minilm_unfused_reference, "minilm", bias_gelu_impl::unfused_reference) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_bias_gelu, minilm_unfused, "minilm", bias_gelu_impl::unfused) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_bias_gelu, minilm_fused, "minilm", bias_gelu_impl::fused) BITFIT_TOKENS;

BENCHMARK_CAPTURE(BM_residual_layernorm_forward, base_drop_unfused_reference, "base", tail_impl::unfused_reference, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, base_drop_unfused, "base", tail_impl::unfused, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, base_drop_fused, "base", tail_impl::fused, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, base_eval_unfused_reference, "base", tail_impl::unfused_reference, false) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, base_eval_unfused, "base", tail_impl::unfused, false) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, base_eval_fused, "base", tail_impl::fused, false) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, minilm_drop_unfused_reference, "minilm", tail_impl::unfused_reference, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, minilm_drop_unfused, "minilm", tail_impl::unfused, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_forward, minilm_drop_fused, "minilm", tail_impl::fused, true) BITFIT_TOKENS;

BENCHMARK_CAPTURE(BM_residual_layernorm_backward, base_drop_unfused_reference, "base", tail_impl::unfused_reference, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_backward, base_drop_unfused, "base", tail_impl::unfused, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_backward, base_drop_fused, "base", tail_impl::fused, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_backward, minilm_drop_unfused_reference, "minilm", tail_impl::unfused_reference, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_backward, minilm_drop_unfused, "minilm", tail_impl::unfused, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_residual_layernorm_backward, minilm_drop_fused, "minilm", tail_impl::fused, true) BITFIT_TOKENS;

BENCHMARK_CAPTURE(BM_dropout_forward, reference, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_dropout_forward, vectorised, false) BITFIT_TOKENS;

BENCHMARK_CAPTURE(BM_attention, base_forward_eval, "base", false, false) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_attention, base_forward_drop, "base", false, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_attention, base_backward_drop, "base", true, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_attention, minilm_forward_drop, "minilm", false, true) BITFIT_TOKENS;
BENCHMARK_CAPTURE(BM_attention, minilm_backward_drop, "minilm", true, true) BITFIT_TOKENS;

#define BITFIT_ROWS ->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime()
BENCHMARK_CAPTURE(BM_dense_product, base_qkv_gemm, 3 * 768, 768, false) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_qkv_fixed_order, 3 * 768, 768, true) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_out_gemm, 768, 768, false) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_out_fixed_order, 768, 768, true) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_mlp_in_gemm, 3072, 768, false) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_mlp_in_fixed_order, 3072, 768, true) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_mlp_out_gemm, 768, 3072, false) BITFIT_ROWS;
BENCHMARK_CAPTURE(BM_dense_product, base_mlp_out_fixed_order, 768, 3072, true) BITFIT_ROWS;

int main(int argc, char** argv) { return bitfit::bench::run_benchmarks(argc, argv); }
