#pragma once
/// @file cpu.hpp
/// What the CPU running us can do, read at run time with CPUID and XGETBV. Nothing in bitfit picks
/// an instruction set from how it was compiled alone: this project's machines range from AVX2-only
/// AMD to Intel with AVX-512 and AMX, and one binary must run on all of them.

#include <bitfit/core/error.hpp>

#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace bitfit {

/// Instruction-set features that matter to our kernels, each usable only if the OS saves the
/// registers it needs (XCR0), and the CPU's brand string for benchmark tables.
struct cpu_info {
  std::string model;          ///< e.g. "AMD EPYC 9R14 96-Core Processor"
  int family = 0;             ///< CPUID family, model and stepping (extended fields applied, as
  int model_number = 0;       ///< /proc/cpuinfo shows them): a brand string such as "AMD EPYC"
  int stepping = 0;           ///< names several generations, these tell them apart
  bool avx2 = false;          ///< AVX2 + FMA, with YMM state enabled
  bool avx512f = false;       ///< AVX-512 Foundation, with ZMM state enabled
  bool avx512_bf16 = false;   ///< VDPBF16PS (Cooper Lake, Zen 4)
  bool amx_bf16 = false;      ///< AMX tiles with BF16 (Sapphire Rapids)

  /// The brand string with the CPUID signature, e.g. "AMD EPYC (family 25, model 17, stepping 1)":
  /// what every timing is reported beside.
  std::string describe() const {
    if (family == 0) return model;
    return model + " (family " + std::to_string(family) + ", model " + std::to_string(model_number) + ", stepping " +
           std::to_string(stepping) + ")";
  }

  /// The features as one line, for logs and benchmark tables.
  std::string features() const {
    std::string s;
    for (auto [on, name] : {std::pair{avx2, "avx2"}, {avx512f, "avx512f"}, {avx512_bf16, "avx512_bf16"},
                            {amx_bf16, "amx_bf16"}})
      if (on) s.append(s.empty() ? "" : " ").append(name);
    return s.empty() ? "baseline x86-64" : s;
  }
};

namespace detail {
#if defined(__x86_64__) || defined(__i386__)
inline unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

inline cpu_info read_cpu_info() {
  cpu_info c;
  unsigned a = 0, b = 0, cx = 0, d = 0;
  if (unsigned(__get_cpuid_max(0x80000000u, nullptr)) >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      __get_cpuid(0x80000002u + leaf, &a, &b, &cx, &d);
      const unsigned regs[4] = {a, b, cx, d};
      for (int r = 0; r < 4; ++r)
        for (int k = 0; k < 4; ++k) brand[leaf * 16 + r * 4 + k] = char((regs[r] >> (8 * k)) & 0xff);
    }
    c.model = brand;
    const auto first = c.model.find_first_not_of(' ');
    c.model = first == std::string::npos ? "" : c.model.substr(first);
    while (!c.model.empty() && (c.model.back() == ' ' || c.model.back() == '\0')) c.model.pop_back();
  }
  if (c.model.empty()) c.model = "unknown x86-64";
  if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
  // Leaf 1 EAX: stepping [3:0], model [7:4], family [11:8], extended model [19:16] and extended
  // family [27:20] (the extended model counts for family 6 and 15 and up).
  const int base_family = int((a >> 8) & 0xf), base_model = int((a >> 4) & 0xf);
  c.family = base_family == 0xf ? base_family + int((a >> 20) & 0xff) : base_family;
  c.model_number = base_family == 0x6 || base_family == 0xf ? (int((a >> 16) & 0xf) << 4) + base_model : base_model;
  c.stepping = int(a & 0xf);
  const bool osxsave = cx & (1u << 27), fma = cx & (1u << 12);
  if (!osxsave) return c;
  const unsigned long long xcr0 = xgetbv0();
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6, tiles = (xcr0 & 0x60000) == 0x60000;
  if (__get_cpuid_max(0, nullptr) < 7) return c;
  __cpuid_count(7, 0, a, b, cx, d);
  c.avx2 = ymm && fma && (b & (1u << 5));
  c.avx512f = zmm && (b & (1u << 16));
  c.amx_bf16 = tiles && (d & (1u << 22)) && (d & (1u << 24));
  __cpuid_count(7, 1, a, b, cx, d);
  c.avx512_bf16 = c.avx512f && (a & (1u << 5));
  return c;
}
#else
inline cpu_info read_cpu_info() { return {"non-x86 CPU"}; }
#endif
}  // namespace detail

/// The CPU we run on (read once).
inline const cpu_info& this_cpu() {
  static const cpu_info info = detail::read_cpu_info();
  return info;
}

/// Throws if this binary was compiled for instructions the CPU lacks, so that a build with
/// -march=x86-64-v3 (our default for executables) fails with a sentence on an older CPU instead
/// of dying of SIGILL in the first vectorised loop. Call it first thing in main().
inline void require_compiled_isa() {
  const cpu_info& c = this_cpu();
#if defined(__AVX512F__)
  check(c.avx512f, "this binary was compiled for AVX-512 but the CPU (" + c.model +
                       ") has no AVX-512: rebuild with -DBITFIT_ARCH=x86-64-v3");
#endif
#if defined(__AVX2__)
  check(c.avx2, "this binary was compiled for AVX2 but the CPU (" + c.model +
                    ") has no AVX2: rebuild with -DBITFIT_ARCH=x86-64");
#endif
  (void)c;
}

}  // namespace bitfit
