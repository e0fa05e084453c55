#pragma once
// Command-line options of the `bitfit` tool: each subcommand declares its options, and parsing
// rejects anything else with one clear line.
//
// Parsing is CLI11's (Debian's libcli11-dev): short forms (-t, -o, ...), `--name=value` for a value
// that starts with "--", and a scalar option given twice is an error instead of silently replacing
// the first. Values stay strings here and are converted by integer()/real()/choice(), which
// name the option and the offending value in their errors.

#include <bitfit/core/error.hpp>

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bitfit::cli {

struct option_spec {
  /// Names in CLI11's syntax, canonical long name first: "task-name" or "-t,--task-name,--task"
  /// (a bare name means "--name"). Values are looked up by the canonical name without dashes.
  std::string names;
  std::string arg;    // "" for a flag, else the metavariable shown in help ("N", "DIR", ...)
  std::string help;
  std::string fallback = {};  // default value ("" = none)
  bool many = false;  // takes one or more values; repeating the option appends
  bool required = false;
};

class options {
 public:
  options(std::string command, std::string summary, std::vector<option_spec> specs)
      : command_(std::move(command)), app_(std::move(summary), "bitfit " + command_) {
    app_.set_help_flag("-h,--help", "show this help");
    app_.get_formatter()->column_width(34);
    for (auto& s : specs) {
      std::string names = s.names.find('-') == 0 ? s.names : "--" + s.names;
      const std::string key = canonical(names);
      std::string help = s.help;
      if (!s.fallback.empty()) help += " (default: " + s.fallback + ")";
      CLI::Option* o = nullptr;
      if (s.arg.empty()) {
        o = app_.add_flag(names, flags_[key], help);
      } else {
        o = app_.add_option(names, values_[key], help)->type_name(s.arg);
        if (s.many)
          o->expected(1, CLI::detail::expected_max_vector_size)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
        else
          o->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::Throw);
      }
      if (s.required) o->required();
      specs_[key] = std::move(s);
    }
  }

  /// Parses argv after the subcommand. Returns false when --help was given (help printed).
  bool parse(int argc, char** argv, int first) {
    std::vector<std::string> args;
    for (int i = argc - 1; i >= first; --i) args.emplace_back(argv[i]);  // CLI11 takes them reversed
    try {
      app_.parse(args);
    } catch (const CLI::CallForHelp&) {
      std::fputs(app_.help().c_str(), stdout);
      return false;
    } catch (const CLI::ParseError& e) {
      std::string what = e.what();
      // CLI11 says "--epochs: At Most 1 required but received 2" for a scalar given twice.
      if (const auto at = what.find(": At Most 1 required"); e.get_name() == "ArgumentMismatch" && at != std::string::npos)
        what = what.substr(0, at) + " given more than once (it takes one value)";
      throw error(prefix() + what + " (see --help)");
    }
    return true;
  }

  bool has(const std::string& name) const {
    if (auto f = flags_.find(name); f != flags_.end()) return f->second > 0;
    return !values_.at(name).empty();
  }
  std::string str(const std::string& name) const {
    const auto& v = values_.at(name);
    return v.empty() ? spec(name).fallback : v.front();
  }
  std::vector<std::string> list(const std::string& name) const {
    const auto& v = values_.at(name);
    if (!v.empty()) return v;
    const auto& f = spec(name).fallback;
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
  /// "bitfit <command>: ", the start of every error line of this command.
  std::string prefix() const { return "bitfit " + command_ + ": "; }

 private:
  // The canonical key of "-t,--task-name,--task": "task-name".
  static std::string canonical(const std::string& names) {
    for (std::size_t start = 0; start < names.size();) {
      const auto comma = std::min(names.find(',', start), names.size());
      const std::string_view n(names.data() + start, comma - start);
      if (n.starts_with("--")) return std::string(n.substr(2));
      start = comma + 1;
    }
    throw error("option '" + names + "' has no long name");
  }
  const option_spec& spec(const std::string& name) const { return specs_.at(name); }

  std::string command_;
  CLI::App app_;
  std::map<std::string, option_spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, int> flags_;
};

}  // namespace bitfit::cli
