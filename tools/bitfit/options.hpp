#pragma once
// Command-line options of the `bitfit` tool: each subcommand declares its options, and parsing
// rejects anything else with one clear line.

#include <bitfit/core/error.hpp>

#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitfit::cli {

struct option_spec {
  std::string name;   // without the leading "--"
  std::string arg;    // "" for a flag, else the metavariable shown in help ("N", "DIR", ...)
  std::string help;
  std::string fallback = {};  // default value ("" = none)
  bool many = false;  // takes one or more values (until the next --option)
  bool required = false;
};

class options {
 public:
  options(std::string command, std::string summary, std::vector<option_spec> specs)
      : command_(std::move(command)), summary_(std::move(summary)), specs_(std::move(specs)) {}

  /// Parses argv after the subcommand. Returns false when --help was given (help printed).
  bool parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string_view a = argv[i];
      if (a == "--help" || a == "-h") {
        print_help();
        return false;
      }
      check(a.starts_with("--"), prefix() + "unexpected argument '" + std::string(a) + "' (see --help)");
      std::string name(a.substr(2));
      std::optional<std::string> inline_value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
      const option_spec* spec = find(name);
      check(spec != nullptr, prefix() + "unknown option --" + name + " (see --help)");
      auto& vals = values_[name];
      vals.clear();
      if (spec->arg.empty()) {
        check(!inline_value, prefix() + "--" + name + " takes no value");
        vals.push_back("1");
        continue;
      }
      if (inline_value) {
        vals.push_back(*inline_value);
      } else {
        while (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) {
          vals.push_back(argv[++i]);
          if (!spec->many) break;
        }
      }
      check(!vals.empty(), prefix() + "--" + name + " needs a value (" + spec->arg + ")");
    }
    for (const auto& s : specs_)
      check(!s.required || values_.count(s.name), prefix() + "--" + s.name + " is required (see --help)");
    return true;
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string str(const std::string& name) const {
    if (auto it = values_.find(name); it != values_.end()) return it->second.front();
    return find(name)->fallback;
  }
  std::vector<std::string> list(const std::string& name) const {
    if (auto it = values_.find(name); it != values_.end()) return it->second;
    const auto& f = find(name)->fallback;
    return f.empty() ? std::vector<std::string>{} : std::vector<std::string>{f};
  }
  long long integer(const std::string& name, long long lo, long long hi) const {
    const std::string s = str(name);
    long long v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    check(ec == std::errc() && p == s.data() + s.size(), prefix() + "--" + name + " expects an integer, got '" + s + "'");
    check(v >= lo && v <= hi, prefix() + "--" + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + s);
    return v;
  }
  double real(const std::string& name, double lo, double hi) const {
    const std::string s = str(name);
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    check(ec == std::errc() && p == s.data() + s.size(), prefix() + "--" + name + " expects a number, got '" + s + "'");
    check(v >= lo && v <= hi, prefix() + "--" + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + s);
    return v;
  }
  std::string choice(const std::string& name, const std::vector<std::string>& allowed) const {
    const std::string s = str(name);
    for (const auto& a : allowed)
      if (a == s) return s;
    std::string all;
    for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
    throw error(prefix() + "--" + name + " must be one of " + all + ", got '" + s + "'");
  }
  void print_help() const;

 private:
  std::string prefix() const { return "bitfit " + command_ + ": "; }
  const option_spec* find(const std::string& name) const {
    for (const auto& s : specs_)
      if (s.name == name) return &s;
    return nullptr;
  }
  std::string command_, summary_;
  std::vector<option_spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace bitfit::cli

#include <cstdio>

inline void bitfit::cli::options::print_help() const {
  std::printf("usage: bitfit %s [options]\n\n%s\n\noptions:\n", command_.c_str(), summary_.c_str());
  for (const auto& s : specs_) {
    std::string left = "--" + s.name + (s.arg.empty() ? "" : " " + s.arg + (s.many ? " ..." : ""));
    std::string right = s.help;
    if (!s.fallback.empty()) right += " (default: " + s.fallback + ")";
    if (s.required) right += " (required)";
    std::printf("  %-28s %s\n", left.c_str(), right.c_str());
  }
  std::printf("  %-28s %s\n", "--help", "show this help");
}
