// libFuzzer target: a whole tensor bundle (index + data) through bitfit::tf_checkpoint.
//
// Input: a 4-byte little-endian length n, then n bytes of `<prefix>.index`, then the rest as the
// data file. The data is written as the only shard of a 1-shard bundle and as both shards of a
// 2-shard one, so headers with either count get past the file opening. Opening must either
// succeed or throw bitfit::error; every DT_FLOAT tensor is then read in full. Anything else (a
// crash, a sanitizer report, another exception) is a finding. Built with
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (see scripts/fuzz), so checksums are not compared.
#include <bitfit/io/tf_checkpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace {

char created[4096];  // a plain array, still alive when the atexit handler removes the directory

/// A private directory, in RAM when /dev/shm exists: ext4 flushes a file truncated by rewriting
/// on close, which made the target disk-bound at ~300 inputs/s.
const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const auto base = std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                     : std::filesystem::temp_directory_path();
    std::string pattern = (base / "bitfit-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data()) || pattern.size() >= sizeof created) std::abort();
    std::memcpy(created, pattern.c_str(), pattern.size() + 1);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(created, ignored);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

void write(const std::filesystem::path& p, const std::uint8_t* bytes, std::size_t n) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes), std::streamsize(n));
}

}  // namespace

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
