// libFuzzer target: a whole tensor bundle (index + data) through bitfit::tf_checkpoint.
//
// Input: a 4-byte little-endian length n, then n bytes of `<prefix>.index`, then the rest as the
// data file. The data is written as the only shard of a 1-shard bundle and as both shards of a
// 2-shard one, so headers with either count get past the file opening. Opening must either
// succeed or throw bitfit::error; every DT_FLOAT tensor is then read in full. Anything else (a
// crash, a sanitizer report, another exception) is a finding. Built with
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (see scripts/fuzz), so checksums are not compared.
#include <bitfit/io/tf_checkpoint.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>

using bitfit::fuzz::scratch_dir;
using bitfit::fuzz::write;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::size_t index_size = std::size_t(data[0]) | std::size_t(data[1]) << 8 | std::size_t(data[2]) << 16 |
                           std::size_t(data[3]) << 24;
  data += 4, size -= 4;
  if (index_size > size) index_size = size;
  const auto prefix = scratch_dir() / "ckpt";
  write(prefix.string() + ".index", data, index_size);
  for (const char* shard : {".data-00000-of-00001", ".data-00000-of-00002", ".data-00001-of-00002"})
    write(prefix.string() + shard, data + index_size, size - index_size);
  try {
    const bitfit::tf_checkpoint ck(prefix);
    float sum = 0;
    for (const auto& name : ck.names()) {
      const auto& t = ck.info(name);
      if (t.dtype != bitfit::tf_dtype::dt_float) continue;
      for (float v : ck.f32(name, t.shape)) sum += v;
    }
    volatile float sink = sum;
    (void)sink;
  } catch (const bitfit::error&) {
  }
  return 0;
}
