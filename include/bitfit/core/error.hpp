#pragma once
/// @file error.hpp
/// The single exception type of the library. Every failure that depends on user input (files,
/// flags, text, shapes) throws `bitfit::error` with a message that names the thing and the problem.

#include <stdexcept>
#include <string>

namespace bitfit {

/// Thrown for every recoverable failure: bad files, bad configuration, bad arguments.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws `bitfit::error(message)` when `condition` is false.
inline void check(bool condition, const std::string& message) {
  if (!condition) throw error(message);
}

}  // namespace bitfit
