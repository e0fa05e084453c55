#pragma once
// Where tests find their inputs: committed goldens (tests/data), the shared GLUE data and the
// fetched model. Environment variables override the configure-time defaults.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace bitfit::test {

inline std::filesystem::path env_or(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return std::filesystem::path(v && *v ? v : fallback);
}
inline std::filesystem::path golden_dir() { return BITFIT_TEST_DATA; }
inline std::filesystem::path data_dir() { return env_or("BITFIT_DATA_DIR", BITFIT_DATA_DIR_DEFAULT); }
inline std::filesystem::path model_dir() { return env_or("BITFIT_MODEL_DIR", BITFIT_MODEL_DIR_DEFAULT); }

}  // namespace bitfit::test
