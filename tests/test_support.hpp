#pragma once
// What many tests share: where they find their inputs (committed goldens in tests/data, the
// shared GLUE data and the fetched model; environment variables override the configure-time
// defaults), a scratch directory for the files they write, the message of an expected error, and
// the tiny random model configuration of the gradient checks.
#include <bitfit/core/error.hpp>
#include <bitfit/model/config.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace bitfit::test {

inline std::filesystem::path env_or(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return std::filesystem::path(v && *v ? v : fallback);
}
inline std::filesystem::path golden_dir() { return BITFIT_TEST_DATA; }
inline std::filesystem::path data_dir() { return env_or("BITFIT_DATA_DIR", BITFIT_DATA_DIR_DEFAULT); }
inline std::filesystem::path model_dir() { return env_or("BITFIT_MODEL_DIR", BITFIT_MODEL_DIR_DEFAULT); }

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("bitfit-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
  /// Writes `bytes` to the file `name` in the directory; returns its path.
  std::filesystem::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return path / name;
  }
};

/// The message of the bitfit::error that f() throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const bitfit::error& e) {
    return e.what();
  }
  return "(no error)";
}

/// L=2, H=8, A=2, I=16: small enough for finite differences over every parameter.
inline bert_config tiny_config() {
  bert_config c;
  c.hidden_size = 8, c.num_hidden_layers = 2, c.num_attention_heads = 2, c.intermediate_size = 16;
  c.vocab_size = 50, c.max_position_embeddings = 16, c.type_vocab_size = 2;
  return c;
}

}  // namespace bitfit::test
