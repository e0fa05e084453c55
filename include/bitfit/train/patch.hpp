#pragma once
/// @file patch.hpp
/// A task patch: the trained tensors of one task (bias terms + head, a few hundred KB) in a
/// safetensors file whose metadata ties it to its backbone by backbone_id() (a hash of the
/// weights that does not depend on their file format). One frozen backbone serves
/// many tasks, each applying its patch. full_ft / random-subset runs write every tensor instead
/// (a full checkpoint), in the same format.

#include <bitfit/core/error.hpp>
#include <bitfit/core/json.hpp>
#include <bitfit/io/safetensors.hpp>
#include <bitfit/model/params.hpp>
#include <bitfit/train/head.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace bitfit {

inline constexpr const char* patch_format = "bitfit-patch/2";
/// Format 1 named its backbone by the sha256 of model.safetensors (the file, not the weights).
inline constexpr const char* patch_format_v1 = "bitfit-patch/1";

/// What a patch says about itself (its safetensors metadata).
struct patch_info {
  std::string kind = "bias";        ///< "bias": trained tensors only; "full": every tensor
  std::string task;
  std::string fine_tune_type;
  std::string bias_terms;           ///< space-separated option names, e.g. "query intermediate"
  std::string backbone_id;          ///< backbone_id() of the weights it was trained on
  std::vector<std::string> labels;  ///< class names in id order; empty for regression
  int num_labels = 2;
  int first_trainable_layer = 0;
  bool per_token = false;           ///< a per-token head (POS tagging); metadata "head": "token" or "sequence"
  std::string tagset;               ///< token tasks: the CoNLL-U column of the labels ("UPOS", "XPOS"); else empty
  std::string extra;                ///< free-form JSON (e.g. training hyper-parameters)
};

/// Writes a patch atomically: `entries` of `p` (by HF name) plus the head, with `info` as metadata.
inline void save_patch(const std::filesystem::path& path, const bert_params<float>& p,
                       const std::vector<const param_entry*>& entries, const task_head<float>& head,
                       const patch_info& info) {
  std::vector<tensor_to_write> ts;
  for (const auto* e : entries) ts.push_back({e->name, e->shape, p.tensor(*e)});
  ts.push_back({"classifier.weight", {head.C, head.H}, head.W});
  ts.push_back({"classifier.bias", {head.C}, head.b});
  std::map<std::string, std::string> meta = {
      {"format", patch_format},
      {"kind", info.kind},
      {"task", info.task},
      {"fine_tune_type", info.fine_tune_type},
      {"bias_terms", info.bias_terms},
      {"backbone_id", info.backbone_id},
      {"labels", nlohmann::json(info.labels).dump()},
      {"num_labels", std::to_string(info.num_labels)},
      {"first_trainable_layer", std::to_string(info.first_trainable_layer)},
      {"head", head.per_token ? "token" : "sequence"},  // the head's own kind; info.per_token is what apply_patch read
      {"extra", info.extra.empty() ? "{}" : info.extra}};
  if (!info.tagset.empty()) meta["tagset"] = info.tagset;
  write_safetensors(path, ts, meta);
}

/// Reads a patch's metadata and applies its tensors to `p` (replacing them) and to a new head.
/// A "bias" patch must name the backbone `backbone_id` (see backbone_id()); a mismatch is an error, since bias
/// terms trained on one backbone are meaningless on another.
inline patch_info apply_patch(const std::filesystem::path& path, bert_params<float>& p, task_head<float>& head,
                              const std::string& backbone_id) {
  safetensors_file f(path);
  const auto& m = f.metadata();
  auto get = [&](const char* key) -> std::string {
    check(m.contains(key) && m[key].is_string(), path.string() + ": patch metadata lacks '" + key + "'");
    return m[key].get<std::string>();
  };
  check(get("format") != patch_format_v1,
        path.string() + ": a bitfit-patch/1 file, which names its backbone by file hash; retrain it with this version");
  check(get("format") == patch_format, path.string() + ": not a bitfit patch (format '" + get("format") + "')");
  patch_info info;
  info.kind = get("kind");
  info.task = get("task");
  info.fine_tune_type = get("fine_tune_type");
  info.bias_terms = get("bias_terms");
  info.backbone_id = get("backbone_id");
  info.extra = get("extra");
  // Patches written before token heads existed have no "head": they are sequence heads.
  const std::string head_kind = m.contains("head") ? get("head") : "sequence";
  check(head_kind == "sequence" || head_kind == "token",
        path.string() + ": unknown head kind '" + head_kind + "' (sequence or token)");
  info.per_token = head_kind == "token";
  if (m.contains("tagset")) info.tagset = get("tagset");
  const auto labels = parse_json_bounded(get("labels"), path.string() + ": patch metadata 'labels'");
  check(labels.is_array() && std::all_of(labels.begin(), labels.end(), [](const auto& l) { return l.is_string(); }),
        path.string() + ": malformed patch metadata: 'labels' must be a JSON array of strings, got " +
            json_excerpt(labels));
  info.labels = labels.get<std::vector<std::string>>();
  // All digits (and a '-') to the end, within int: std::stoi would take "3abc" as 3, " 3" as 3.
  const auto get_int = [&](const char* key) {
    const std::string text = get(key);
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    check(ec == std::errc() && end == text.data() + text.size(),
          path.string() + ": malformed patch metadata: '" + key + "' is " + json_excerpt(text) +
              ", not an integer in the range of int");
    return value;
  };
  info.num_labels = get_int("num_labels");
  info.first_trainable_layer = get_int("first_trainable_layer");
  check(info.kind == "bias" || info.kind == "full", path.string() + ": unknown patch kind '" + info.kind + "'");
  check(info.num_labels >= 1 && info.num_labels <= 1000, path.string() + ": bad num_labels");
  // Predictions index the label list by class id: one label per class, or none for a 1-output
  // regression head. (The head's tensors are checked against num_labels by shape below.)
  check(info.labels.empty() ? info.num_labels == 1 : info.labels.size() == std::size_t(info.num_labels),
        path.string() + ": num_labels " + std::to_string(info.num_labels) + " disagrees with its " +
            std::to_string(info.labels.size()) + " labels (a classifier has one label per class, a regression " +
            "head none and num_labels 1)");
  if (info.kind == "bias")
    check(info.backbone_id == backbone_id,
          path.string() + ": patch was trained on backbone " + info.backbone_id + " but this model is " + backbone_id +
              " (a bias patch only applies to the weights it was trained on)");
  check(f.contains("classifier.weight") && f.contains("classifier.bias"),
        path.string() + ": patch has no task head (classifier.weight, classifier.bias)");
  // All or nothing: every tensor is checked (a parameter of this backbone, allowed in this kind
  // of patch, the right shape and a float dtype) before anything is written, so a bad tensor
  // anywhere in the file leaves the backbone and the head as they were.
  std::vector<std::pair<std::span<const float>, std::span<float>>> copies;
  for (const auto& name : f.names()) {
    if (name.starts_with("classifier.")) continue;
    const param_entry* found = p.layout.lookup(name);
    check(found != nullptr, path.string() + ": tensor '" + name + "' is not a parameter of this backbone");
    check(found->is_bias || info.kind == "full",
          path.string() + ": bias patch holds the weight '" + name + "' (only a full checkpoint may)");
    const auto src = f.f32(name, std::span<const std::int64_t>(found->shape));
    try {  // p.tensor() refuses an entry `p` does not hold (a weight of a bias-only buffer, bf16 weights)
      copies.emplace_back(src, p.tensor(*found));
    } catch (const error& e) {
      throw error(path.string() + ": " + e.what());
    }
  }
  const int H = p.config.hidden_size;
  const auto W = f.f32("classifier.weight", {info.num_labels, H});
  const auto b = f.f32("classifier.bias", {info.num_labels});
  for (const auto& [src, dst] : copies) std::ranges::copy(src, dst.begin());
  head = task_head<float>(info.num_labels, H);
  head.per_token = info.per_token;
  std::ranges::copy(W, head.W.begin());
  std::ranges::copy(b, head.b.begin());
  return info;
}

}  // namespace bitfit
