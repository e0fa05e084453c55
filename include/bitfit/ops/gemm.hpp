#pragma once
/// @file gemm.hpp
/// The seam under every dense layer: row-major matrix products on one of two backends, in fp32 or
/// with bf16 frozen weights.
///
/// Backends:
///  - Eigen (always built): portable; its kernels are those of the compile flags (AVX2 + FMA in
///    our executables, see BITFIT_ARCH in CMakeLists.txt).
///  - oneDNN (when built with BITFIT_WITH_ONEDNN, Debian's libdnnl-dev): JIT kernels chosen at run
///    time from the CPU (AVX2, AVX-512, AVX512-BF16, AMX), so one binary runs everywhere at the
///    speed of the CPU it lands on. The default when present.
///
/// bf16: BitFit never updates the weight matrices, so they can be stored in bf16 for good at load
/// (no fp32 master copy: half the weight memory). The activations are rounded to bf16 for the
/// product, which accumulates in fp32; biases, gradients and optimizer state stay fp32. Only the
/// oneDNN backend has bf16 kernels, and only on CPUs with AVX512-BF16 or AMX (bf16_available()).

#include <bitfit/core/buffer.hpp>
#include <bitfit/core/cpu.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/core/view.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#if BITFIT_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace bitfit {

/// A bfloat16 value: the upper 16 bits of an IEEE float32.
struct bf16 {
  std::uint16_t bits = 0;
};

/// Rounds to the nearest bf16, ties to even (as PyTorch and oneDNN round); NaN stays NaN.
inline bf16 to_bf16(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {std::uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return {std::uint16_t(u >> 16)};
}
inline float to_float(bf16 x) { return std::bit_cast<float>(std::uint32_t(x.bits) << 16); }

/// out (n) = bf16(inp (n)). A branch-free loop the compiler vectorises at any -march.
inline void convert_to_bf16(bf16* out, const float* inp, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = to_bf16(inp[i]);
}

/// Numeric precision of the frozen weight matrices and their products.
enum class precision { fp32, bf16 };

/// What a user asks for: `automatic` is bf16 where the CPU has bf16 matrix instructions.
enum class precision_request { fp32, bf16, automatic };

inline std::string_view precision_name(precision p) { return p == precision::bf16 ? "bf16" : "fp32"; }

/// "fp32", "bf16" or "auto"; throws naming `origin` otherwise.
inline precision_request parse_precision(std::string_view s, const std::string& origin) {
  if (s == "fp32") return precision_request::fp32;
  if (s == "bf16") return precision_request::bf16;
  if (s == "auto") return precision_request::automatic;
  throw error(origin + ": precision '" + std::string(s) + "' is not one of fp32, bf16, auto");
}

/// Matrix-product backends (see the file comment).
enum class gemm_backend { eigen, onednn };

inline std::string_view backend_name(gemm_backend b) { return b == gemm_backend::onednn ? "onednn" : "eigen"; }

namespace detail {
inline gemm_backend initial_backend() {
#if BITFIT_HAS_ONEDNN
  if (const char* env = std::getenv("BITFIT_GEMM"); env && std::string_view(env) == "eigen") return gemm_backend::eigen;
  return gemm_backend::onednn;
#else
  return gemm_backend::eigen;
#endif
}
inline std::atomic<gemm_backend>& backend_slot() {
  static std::atomic<gemm_backend> b{initial_backend()};
  return b;
}
#if BITFIT_HAS_ONEDNN
/// Whether the instruction set oneDNN will use here includes `isa`. oneDNN encodes each ISA as a
/// bit set holding the bits of those it extends (dnnl_types.h: avx512_core 0x27 within
/// avx512_core_bf16 0xe7 within avx512_core_amx 0x3e7), so an ISA newer than the list a build
/// knows (oneDNN 3's avx512_core_amx_fp16, 0x1fef) still counts as including those below it.
inline bool onednn_isa_includes(dnnl::cpu_isa isa) {
  const auto want = static_cast<unsigned>(isa);
  return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & want) == want;
}
#endif
}  // namespace detail

/// The fp32 backend in use (process-wide; env BITFIT_GEMM=eigen|onednn sets the initial one).
inline gemm_backend current_gemm_backend() { return detail::backend_slot().load(std::memory_order_relaxed); }

/// Selects the fp32 backend; throws if oneDNN was not built in.
inline void set_gemm_backend(gemm_backend b) {
#if !BITFIT_HAS_ONEDNN
  check(b == gemm_backend::eigen, "this build of bitfit has no oneDNN backend (configure with BITFIT_WITH_ONEDNN=ON)");
#endif
  detail::backend_slot().store(b, std::memory_order_relaxed);
}

/// The instruction set oneDNN will use here (honours ONEDNN_MAX_CPU_ISA), or "none".
inline std::string onednn_isa() {
#if BITFIT_HAS_ONEDNN
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
#else
  return "none";
#endif
}

/// Whether bf16 products run here at hardware speed: oneDNN built in, and the CPU (as oneDNN is
/// allowed to use it) has AVX512-BF16 or AMX. Elsewhere oneDNN would emulate bf16 slower than
/// fp32, so we refuse rather than silently run slow.
inline bool bf16_available() {
#if BITFIT_HAS_ONEDNN
  return detail::onednn_isa_includes(dnnl::cpu_isa::avx512_core_bf16);
#else
  return false;
#endif
}

/// The precision a request means on this machine. `bf16` where it is unavailable is an error.
inline precision resolve_precision(precision_request r) {
  if (r == precision_request::fp32) return precision::fp32;
  if (r == precision_request::automatic) return bf16_available() ? precision::bf16 : precision::fp32;
  check(bf16_available(), "bf16 precision needs oneDNN and a CPU with AVX512-BF16 or AMX; this one (" + this_cpu().model +
                              ", oneDNN ISA " + onednn_isa() + ") has neither: use --precision fp32 or auto");
  return precision::bf16;
}

namespace detail {
#if BITFIT_HAS_ONEDNN
inline dnnl::engine& onednn_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
inline dnnl::stream& onednn_stream() {
  thread_local dnnl::stream s(onednn_engine());
  return s;
}
/// A per-thread bf16 copy of the activations of the product in flight; grows, never shrinks.
inline bf16* bf16_scratch(std::size_t n) {
  thread_local buffer<bf16> s;
  if (s.size() < n) s.resize(n);
  return s.data();
}

/// C (M, N) [+]= A (M, K) · B, with B (K, N) stored row-major (`b_transposed` false) or as its
/// transpose, an (N, K) row-major matrix (true): a weight (out, in) serves the forward as B^T and
/// the input gradient as B, so one copy of each weight serves both.
inline void onednn_bf16_gemm(float* C, const float* A, const bf16* B, int M, int N, int K, bool b_transposed,
                             bool accumulate) {
  using dnnl::memory;
  using tag = memory::format_tag;
  const memory::desc a_md({M, K}, memory::data_type::bf16, tag::ab);
  const memory::desc b_md({K, N}, memory::data_type::bf16, b_transposed ? tag::ba : tag::ab);
  const memory::desc c_md({M, N}, memory::data_type::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.f);
    attr.set_post_ops(ops);
  }
  // oneDNN caches primitives by descriptor: recreating one per call costs ~2 µs, not a JIT.
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, onednn_engine());
  bf16* a16 = bf16_scratch(std::size_t(M) * std::size_t(K));
  convert_to_bf16(a16, A, std::size_t(M) * std::size_t(K));
  auto& eng = onednn_engine();
  memory a(a_md, eng, a16), b(b_md, eng, const_cast<bf16*>(B)), c(c_md, eng, C);
  dnnl::matmul(pd).execute(onednn_stream(), {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  onednn_stream().wait();
}
#endif

inline void bf16_gemm([[maybe_unused]] float* C, [[maybe_unused]] const float* A, [[maybe_unused]] const bf16* B,
                      [[maybe_unused]] int M, [[maybe_unused]] int N, [[maybe_unused]] int K,
                      [[maybe_unused]] bool b_transposed, [[maybe_unused]] bool accumulate) {
#if BITFIT_HAS_ONEDNN
  onednn_bf16_gemm(C, A, B, M, N, K, b_transposed, accumulate);
#else
  throw error("bf16 weights need the oneDNN backend, which this build lacks");
#endif
}

inline void check_gemm_status(int status, const char* what) {
  check(status == 0, std::string("oneDNN ") + what + " failed with status " + std::to_string(status));
}
}  // namespace detail

/// C (M, N) [+]= op(A) · op(B), row-major, op(X) = X^T when `trans_x`: A is (M, K) or (K, M), B is
/// (K, N) or (N, K). Float products go to the selected backend; other types (the double-precision
/// gradient checks) to Eigen.
template <class T>
void gemm(T* C, const T* A, const T* B, int M, int N, int K, bool trans_a, bool trans_b, bool accumulate) {
#if BITFIT_HAS_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    if (current_gemm_backend() == gemm_backend::onednn) {
      detail::check_gemm_status(dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, 1.f, A, trans_a ? M : K, B,
                                           trans_b ? K : N, accumulate ? 1.f : 0.f, C, N),
                                "sgemm");
      return;
    }
  }
#endif
  auto with_a = [&](const auto& a) {
    auto with_b = [&](const auto& b) {
      auto c = as_matrix(C, M, N);
      if (accumulate) c.noalias() += a * b;
      else c.noalias() = a * b;
    };
    if (trans_b) with_b(as_matrix(B, N, K).transpose());
    else with_b(as_matrix(B, K, N));
  };
  if (trans_a) with_a(as_matrix(A, K, M).transpose());
  else with_a(as_matrix(A, M, K));
}

/// C (M, N) [+]= A (M, K) · B^T, B (N, K): the forward of a dense layer with (out, in) weights.
template <class T>
void gemm_abt(T* C, const T* A, const T* B, int M, int N, int K, bool accumulate) {
  gemm(C, A, B, M, N, K, false, true, accumulate);
}

/// C (M, N) [+]= A (M, K) · B, B (K, N): the input gradient of a dense layer.
template <class T>
void gemm_ab(T* C, const T* A, const T* B, int M, int N, int K, bool accumulate) {
  gemm(C, A, B, M, N, K, false, false, accumulate);
}

/// C (M, N) += A^T · B with A (K, M), B (K, N): a weight gradient (fp32 only: trained weights are
/// never bf16).
template <class T>
void gemm_atb_accumulate(T* C, const T* A, const T* B, int M, int N, int K) {
  gemm(C, A, B, M, N, K, true, false, true);
}

/// Below this many rows oneDNN's fp32 GEMM takes another kernel, whose rows differ from the
/// large-batch kernel's in the last bits; with its AVX-512 kernels, from 16 rows on, each row of
/// A · B^T is the same whatever the other rows are (tests/test_gemm.cpp). Inference that must not
/// depend on its company (model/encoder_mixed.hpp) pads smaller products to this many rows, where
/// gemm_rows_stable() says that holds, and uses gemm_abt_fixed_order() where it does not.
inline constexpr int row_stable_rows = 16;

/// Whether the fp32 GEMM here gives each row of A · B^T independently of the other rows, from
/// row_stable_rows rows on: oneDNN with its AVX-512 kernels (measured on Zen 4 and Zen 5). Not
/// its AVX2 kernels: on a Zen 3 the last 1-3 rows of each block of 6 take another kernel (in the
/// last bits), and with two threads where the blocks start moves with the row count. Not Eigen's.
inline bool gemm_rows_stable() {
#if BITFIT_HAS_ONEDNN
  return current_gemm_backend() == gemm_backend::onednn && detail::onednn_isa_includes(dnnl::cpu_isa::avx512_core);
#else
  return false;
#endif
}

namespace detail {
/// C (RM, RN) (row stride ldc) = A (RM, K) · B^T, B (RN, K): per element, eight partial sums over
/// k ≡ j (mod 8) in order, added in a fixed tree, then the tail of k. The same arithmetic for every
/// row slot, and nothing depends on other rows. A tile of 3 rows by 4 features keeps its twelve
/// 8-lane sums in registers (enough to hide the latency of two FMA units) and loads each of A's
/// and B's vectors once for several products.
template <int RM, int RN>
void dot_tile_fixed_order(float* C, std::size_t ldc, const float* A, const float* B, int K) {
  constexpr int P = 8;
  float acc[RM][RN][P] = {};
  const int K8 = K / P * P;
  for (int k = 0; k < K8; k += P)
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) {
        const float* a = A + std::size_t(i) * K + k;
        const float* b = B + std::size_t(j) * K + k;
#pragma omp simd
        for (int l = 0; l < P; ++l) acc[i][j][l] += a[l] * b[l];
      }
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) {
      const float* v = acc[i][j];
      float s = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
      for (int k = K8; k < K; ++k) s += A[std::size_t(i) * K + k] * B[std::size_t(j) * K + k];
      C[std::size_t(i) * ldc + j] = s;
    }
}

/// RM rows of C against features [n0, n1): full tiles of 4 features, then single ones.
template <int RM>
void fixed_order_rows(float* C, const float* A, const float* B, int N, int K, int n0, int n1) {
  int n = n0;
  for (; n + 4 <= n1; n += 4) dot_tile_fixed_order<RM, 4>(C + n, std::size_t(N), A, B + std::size_t(n) * K, K);
  for (; n < n1; ++n) dot_tile_fixed_order<RM, 1>(C + n, std::size_t(N), A, B + std::size_t(n) * K, K);
}
}  // namespace detail

/// C (M, N) = A (M, K) · B^T, B (N, K), each element a dot product in an order that K alone fixes
/// (detail::dot_tile_fixed_order). Every row runs the same code on its own data (the last rows
/// in a tile padded with zero rows), so a row's result depends neither on the other rows, nor on
/// M, nor on the threads: the product for inference that must not depend on its company where
/// gemm_rows_stable() is false. Blocks of B sized for L2 are reused across all rows; at BERT-base's
/// shapes it takes 1.3-1.4x the time of oneDNN's AVX2 kernels on a Zen 3 (docs/PERFORMANCE.md).
inline void gemm_abt_fixed_order(float* C, const float* A, const float* B, int M, int N, int K) {
  constexpr int RM = 3;
  const int NB = std::max(4, (65536 / std::max(K, 1)) / 4 * 4);  // ~256 KiB of B per block
  const int blocks = (N + NB - 1) / NB;
#pragma omp parallel for schedule(static) if (std::ptrdiff_t(M) * N * K > (1 << 20))
  for (int blk = 0; blk < blocks; ++blk) {
    const int n0 = blk * NB, n1 = std::min(N, n0 + NB);
    int m = 0;
    for (; m + RM <= M; m += RM)
      detail::fixed_order_rows<RM>(C + std::size_t(m) * N, A + std::size_t(m) * K, B, N, K, n0, n1);
    if (m < M) {  // the last rows, in a tile padded with zero rows (grow-only scratch per thread)
      const int rest = M - m;
      thread_local std::vector<float> a, c;
      a.assign(std::size_t(RM) * K, 0.f);
      c.resize(std::size_t(RM) * N);
      std::copy_n(A + std::size_t(m) * K, std::size_t(rest) * K, a.data());
      detail::fixed_order_rows<RM>(c.data(), a.data(), B, N, K, n0, n1);
      for (int r = 0; r < rest; ++r)
        std::copy(c.begin() + std::ptrdiff_t(r) * N + n0, c.begin() + std::ptrdiff_t(r) * N + n1, C + std::size_t(m + r) * N + n0);
    }
  }
}

/// C (M, N) [+]= bf16(A) (M, K) · B^T with B (N, K) in bf16, accumulated in fp32.
inline void gemm_abt(float* C, const float* A, const bf16* B, int M, int N, int K, bool accumulate) {
  detail::bf16_gemm(C, A, B, M, N, K, /*b_transposed=*/true, accumulate);
}

/// C (M, N) [+]= bf16(A) (M, K) · B with B (K, N) in bf16, accumulated in fp32.
inline void gemm_ab(float* C, const float* A, const bf16* B, int M, int N, int K, bool accumulate) {
  detail::bf16_gemm(C, A, B, M, N, K, /*b_transposed=*/false, accumulate);
}

}  // namespace bitfit
