#pragma once
// Shared set-up for the benchmarks: model shapes, random parameters and batches, peak RSS.

#include <bitfit/core/cpu.hpp>
#include <bitfit/model/encoder.hpp>
#include <bitfit/ops/gemm.hpp>

#include <benchmark/benchmark.h>


#include <cstdint>
#include <fstream>
#include <span>
#include <string>

namespace bitfit::bench {

/// The default model's shape (all-MiniLM-L6-v2) or BERT-base.
inline bert_config shape(const std::string& name) {
  bert_config c;
  if (name == "minilm") {
    c.hidden_size = 384, c.num_hidden_layers = 6, c.num_attention_heads = 12, c.intermediate_size = 1536;
  }  // else BERT-base: the defaults (L=12, H=768, A=12, I=3072)
  return c;
}

/// Fills v with floats uniform in [-width/2, width/2), element i from (seed, i) alone.
inline void fill_random(std::span<float> v, std::uint64_t seed, float width) {
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = float(double(detail::mix64(seed ^ i) >> 11) * 0x1.0p-53 - 0.5) * width;
}

/// n random floats (as fill_random), 64-byte aligned like the library's own arrays.
inline buffer<float> random_floats(std::size_t n, std::uint64_t seed, float width = 2.0f) {
  buffer<float> v(n);
  fill_random(v, seed, width);
  return v;
}

/// Random parameters of a given shape (timing depends on shape only), LayerNorm gains at 1.
inline bert_params<float> random_params(const bert_config& c, std::uint64_t seed = 1) {
  bert_params<float> p(c, true);
  fill_random(p.data, seed, 0.04f);
  for (auto& l : p.layers)
    for (int h = 0; h < c.hidden_size; ++h) l.gLN1[h] = l.gLN2[h] = 1.0f;
  for (int h = 0; h < c.hidden_size; ++h) p.emb_gLN[h] = 1.0f;
  return p;
}

/// B sequences of T random token ids (full length: the peer is timed without padding too).
inline token_batch random_batch(int B, int T, int vocab, std::uint64_t seed = 7) {
  token_batch b;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(T)), types(static_cast<std::size_t>(T), 0);
  for (int s = 0; s < B; ++s) {
    for (int t = 0; t < T; ++t) ids[std::size_t(t)] = 1000 + std::int32_t(detail::mix64(seed ^ std::uint64_t(s * T + t)) % std::uint64_t(vocab - 1000));
    b.add(ids, types);
  }
  return b;
}

/// Puts the CPU model, its features, oneDNN's instruction set and the fp32 GEMM backend in the
/// benchmark's context (beside every timing, as the project asks).
inline void add_machine_context() {
  benchmark::AddCustomContext("cpu_model", this_cpu().describe());
  benchmark::AddCustomContext("cpu_features", this_cpu().features());
  benchmark::AddCustomContext("onednn_isa", onednn_isa());
  benchmark::AddCustomContext("gemm_backend", std::string(backend_name(current_gemm_backend())));
}

/// main() of every benchmark binary: refuses a CPU the binary was not compiled for, records the
/// machine, runs what the command line selects.
inline int run_benchmarks(int argc, char** argv) {
  require_compiled_isa();
  add_machine_context();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

namespace detail {
/// A "VmRSS:" / "VmHWM:" line of /proc/self/status, in MiB.
inline double status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;
  return 0;
}
}  // namespace detail

/// Resident set size now, in MiB.
inline double current_rss_mib() { return detail::status_mib("VmRSS:"); }

/// Peak resident set size since the last reset_peak_rss() (or process start), in MiB.
inline double peak_rss_mib() { return detail::status_mib("VmHWM:"); }

/// Restarts the peak at the current RSS (Linux: writing 5 to /proc/self/clear_refs), so that a
/// step's peak excludes the transient of building the model, as the PyTorch peer does.
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace bitfit::bench
