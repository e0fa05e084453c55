// libFuzzer target: a .safetensors file through bitfit::safetensors_file.
//
// Input: the whole file (8-byte little-endian header length, JSON header, data). Opening must
// succeed or throw bitfit::error; then every tensor is read in full: f32() for the floating-point
// dtypes (F32/F16/BF16/F64, converting where needed), bytes() for the others, and the metadata is
// quoted as an error message would. Anything else (a crash, a sanitizer report, another exception,
// a stack overflow on deep JSON) is a finding.
#include <bitfit/core/json.hpp>
#include <bitfit/io/safetensors.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = bitfit::fuzz::scratch_dir() / "model.safetensors";
  bitfit::fuzz::write(path, data, size);
  try {
    const bitfit::safetensors_file f(path);
    float sum = 0;
    std::size_t bytes = 0;
    for (const auto& name : f.names()) {
      const auto& t = f.info(name);
      switch (t.type) {
        case bitfit::dtype::f32: case bitfit::dtype::f16: case bitfit::dtype::bf16: case bitfit::dtype::f64:
          for (float v : f.f32(name, t.shape)) sum += v;
          break;
        default:
          for (std::byte b : f.bytes(name)) bytes += std::size_t(b);
      }
    }
    bytes += bitfit::json_excerpt(f.metadata()).size();
    volatile float sink = sum;
    volatile std::size_t sink_bytes = bytes;
    (void)sink, (void)sink_bytes;
  } catch (const bitfit::error&) {
  }
  return 0;
}
