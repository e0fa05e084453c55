#pragma once
/// @file npy.hpp
/// .npy output for tools: float32 arrays written atomically (temporary file, then rename).

#include <bitfit/core/atomic_file.hpp>
#include <bitfit/core/error.hpp>

#include <xtensor/xadapt.hpp>
#include <xtensor/xnpy.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace bitfit {

/// Writes `data` as a float32 .npy of shape (rows, cols) to `path`, atomically.
inline void write_npy(const std::filesystem::path& path, const std::vector<float>& data,
                      std::size_t rows, std::size_t cols) {
  check(data.size() == rows * cols, path.string() + ": data size does not match shape");
  const auto tmp = temp_path_for(path);
  try {
    auto view = xt::adapt(data.data(), rows * cols, xt::no_ownership(), std::vector<std::size_t>{rows, cols});
    xt::dump_npy(tmp.string(), view);
  } catch (const std::exception& e) {
    std::filesystem::remove(tmp);
    throw error(path.string() + ": cannot write (" + e.what() + ")");
  }
  publish_file(tmp, path);
}

}  // namespace bitfit
