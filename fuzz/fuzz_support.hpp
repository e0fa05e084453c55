#pragma once
// What the file-reading fuzz targets share: a private scratch directory (in RAM when /dev/shm
// exists) removed at exit, and writing an input's bytes to a file in it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace bitfit::fuzz {

namespace detail {
inline char created[4096];  // a plain array, still alive when the atexit handler removes the directory
}

/// A private directory, in RAM when /dev/shm exists: ext4 flushes a file truncated by rewriting
/// on close, which made the TF checkpoint target disk-bound at ~300 inputs/s.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const auto base = std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                     : std::filesystem::temp_directory_path();
    std::string pattern = (base / "bitfit-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data()) || pattern.size() >= sizeof detail::created) std::abort();
    std::memcpy(detail::created, pattern.c_str(), pattern.size() + 1);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(detail::created, ignored);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

/// Writes `n` bytes to `p`, replacing it.
inline void write(const std::filesystem::path& p, const std::uint8_t* bytes, std::size_t n) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes), std::streamsize(n));
}
inline void write(const std::filesystem::path& p, std::string_view bytes) {
  write(p, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

/// The input as a string_view.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace bitfit::fuzz
