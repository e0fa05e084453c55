#pragma once
/// @file atomic_file.hpp
/// The one way bitfit writes a file: to "<path>.tmp.<pid>" first, then rename() over `path`, so a
/// reader (or a crash) never sees half a file. And its counterpart, a whole file read in one go.

#include <bitfit/core/error.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include <unistd.h>

namespace bitfit {

/// The temporary name a file is written under before publish_file() renames it.
inline std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return path.string() + ".tmp." + std::to_string(::getpid());
}

/// Renames the finished temporary `tmp` over `path`; on failure removes `tmp` and throws naming `path`.
inline void publish_file(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove_all(tmp, ignored);
    throw error(path.string() + ": cannot write (" + ec.message() + ")");
  }
}

/// Writes `bytes` to `path` atomically. Throws bitfit::error naming `path`.
inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  const auto tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary);
    check(out.good(), path.string() + ": cannot write");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    if (!out.good()) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw error(path.string() + ": write failed");
    }
  }
  publish_file(tmp, path);
}

namespace detail {

/// The bytes of the file at `path`; throws "<path>: cannot open" or "<path>: read error".
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  check(!in.bad(), path.string() + ": read error");
  return s.str();
}

}  // namespace detail

}  // namespace bitfit
