#pragma once
/// @file json.hpp
/// Parsing JSON that comes from files (safetensors headers, config.json, tokenizer_config.json,
/// patch metadata), and quoting it in error messages, without letting a hostile file crash us.
///
/// nlohmann's parser and its destructor are iterative, but dump(), copies and comparisons of a
/// value recurse once per nesting level: `[[[...]]]` 150,000 deep (300 KB) overflows the stack.
/// So every untrusted document is parsed with a nesting bound (no real file of ours nests deeper
/// than 3), and messages describe a value with json_excerpt(), which never recurses and caps
/// its length.

#include <bitfit/core/error.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitfit {

/// Nesting bound of parse_json_bounded(): 64 levels of arrays/objects are accepted, 65 are not.
inline constexpr int json_max_depth = 64;

/// Size bound of parse_json_file(): configs are kilobytes; this only stops absurd files early.
inline constexpr std::size_t json_max_file_bytes = 64u << 20;

namespace detail {

/// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8
/// sequence, so a cut message stays valid UTF-8 whenever the input was.
inline std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // s[n]: first byte cut off
  return s.substr(0, n);
}

/// `s` cut to `max_bytes` (plus "...") for a message.
inline std::string capped(std::string_view s, std::size_t max_bytes = 200) {
  const auto head = utf8_prefix(s, max_bytes);
  return head.size() == s.size() ? std::string(s) : std::string(head) + "...";
}

/// A JSON string literal of (a prefix of) `s`; invalid UTF-8 is replaced, not thrown on.
inline std::string quoted_prefix(std::string_view s, std::size_t max_bytes) {
  return nlohmann::json(std::string(utf8_prefix(s, max_bytes)))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace detail

/// Compact JSON text of `value` for an error message, at most `max_chars` characters (then "...").
/// Walks the value with an explicit stack and stops as soon as the text is long enough, so any
/// value (however deep or large) costs O(max_chars).
inline std::string json_excerpt(const nlohmann::json& value, std::size_t max_chars = 80) {
  struct frame {
    nlohmann::json::const_iterator it, end;
    bool is_object, first = true;
  };
  std::string out;
  std::vector<frame> stack;  // at most one frame per character written
  const auto open = [&](const nlohmann::json& v) {
    if (v.is_object() || v.is_array()) {
      out += v.is_object() ? '{' : '[';
      stack.push_back({v.cbegin(), v.cend(), v.is_object()});
    } else if (v.is_string()) {
      out += detail::quoted_prefix(v.get_ref<const std::string&>(), max_chars + 1);
    } else {
      out += v.dump();  // a number, bool, null or binary: short and flat
    }
  };
  open(value);
  while (!stack.empty() && out.size() <= max_chars) {
    frame& f = stack.back();
    if (f.it == f.end) {
      out += f.is_object ? '}' : ']';
      stack.pop_back();
      continue;
    }
    if (!f.first) out += ',';
    f.first = false;
    if (f.is_object) out += detail::quoted_prefix(f.it.key(), max_chars + 1) + ':';
    const nlohmann::json& child = *f.it;
    ++f.it;  // before open(), whose push_back may move `f`
    open(child);
  }
  if (out.size() > max_chars) out = std::string(detail::utf8_prefix(out, max_chars)) + "...";
  return out;
}

/// Parses untrusted JSON `text`; throws bitfit::error "<origin>: ..." when it is not valid JSON,
/// contains a NUL byte, or nests arrays/objects deeper than `max_depth`. `on_event` (optional)
/// sees every parse event as with nlohmann::json::parse; returning false discards that value.
inline nlohmann::json parse_json_bounded(std::string_view text, const std::string& origin,
                                         int max_depth = json_max_depth,
                                         const nlohmann::json::parser_callback_t& on_event = nullptr) {
  // nlohmann stops at a NUL as at the end of input, which would silently ignore what follows.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    throw error(origin + ": not valid JSON (NUL byte at offset " + std::to_string(nul) + ")");
  const auto bounded = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    // `depth` counts the containers around this one, so the 65th nested container has depth 64.
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) && depth >= max_depth) {
      // Thrown out of the parser, which unwinds cleanly: the partial value is at most
      // max_depth deep, and its destructor is iterative anyway.
      throw error(origin + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
    }
    return on_event ? on_event(depth, event, parsed) : true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), bounded);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann quotes the last token read, which may be a whole megabyte-long string.
    throw error(origin + ": not valid JSON (" + detail::capped(e.what()) + ")");
  }
}

/// Reads and parses the JSON file `path` with parse_json_bounded(); errors name the file. Files
/// over json_max_file_bytes are refused before reading.
inline nlohmann::json parse_json_file(const std::filesystem::path& path, int max_depth = json_max_depth) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(file + ": cannot open (" + std::strerror(errno) + ")");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > json_max_file_bytes)
    throw error(file + ": " + std::to_string(size) + " bytes exceeds the limit of " +
                std::to_string(json_max_file_bytes) + " bytes for a JSON file");
  std::string text;
  if (!ec) text.reserve(std::size_t(size));
  // Bounded even when file_size() cannot tell (a pipe, a file still growing).
  std::vector<char> chunk(1 << 16);
  while (in.read(chunk.data(), std::streamsize(chunk.size())) || in.gcount() > 0) {
    text.append(chunk.data(), std::size_t(in.gcount()));
    if (text.size() > json_max_file_bytes)
      throw error(file + ": exceeds the limit of " + std::to_string(json_max_file_bytes) + " bytes for a JSON file");
  }
  if (in.bad()) throw error(file + ": read error");
  return parse_json_bounded(text, file, max_depth);
}

}  // namespace bitfit
