#pragma once
/// @file merge.hpp
/// One task as a standalone model: a backbone with a patch applied, written as a Hugging Face
/// BertForSequenceClassification (or, for a tagger, BertForTokenClassification) directory for
/// tools that know nothing of patches (HF transformers, ONNX exporters, other servers). The patch
/// stays the compact form (~0.4 MB at BERT-base); the merged directory is a whole model (~440 MB).

#include <bitfit/model/convert.hpp>
#include <bitfit/train/head.hpp>
#include <bitfit/train/patch.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace bitfit {

/// Merges the patch at `patch` (a bias patch or a full checkpoint from `bitfit train`) into the
/// backbone at `model` and writes a standalone HF directory at `dst`: the backbone with the
/// patched biases, "classifier.*" from the patch's head, and a config with the task's labels
/// (id2label, label2id). A sequence patch becomes a BertForSequenceClassification (problem_type
/// regression for a one-output head); a tagger a BertForTokenClassification, without the pooler,
/// which that class does not have (so the directory is not a backbone for sequence tasks here).
/// HF transformers loads it with no missing or unexpected keys and predicts what the patch
/// predicts on the backbone. `dst` must not exist or be empty; it is whole or absent.
inline patch_info merge_to_hf(const std::filesystem::path& model, const std::filesystem::path& patch,
                              const std::filesystem::path& dst) {
  detail::check_output_dir(dst);
  const auto m = locate_model(model);
  const auto tok = load_tokenizer(model);
  auto params = load_bert_params<float>(model);
  task_head<float> head;
  const auto info = apply_patch(patch, params, head, backbone_id(params));
  auto tensors = detail::bert_tensors(params);
  // BertForTokenClassification builds its BertModel without the pooler: HF would report
  // bert.pooler.* as unexpected keys.
  if (info.per_token) std::erase_if(tensors, [](const auto& t) { return t.name.starts_with("bert.pooler."); });
  tensors.push_back({"classifier.weight", {head.C, head.H}, head.W});
  tensors.push_back({"classifier.bias", {head.C}, head.b});
  auto config = detail::hf_config_json(params.config, false);
  config["architectures"] = {info.per_token ? "BertForTokenClassification" : "BertForSequenceClassification"};
  config["finetuning_task"] = info.task;
  if (info.per_token) config["tagset"] = info.tagset;
  nlohmann::ordered_json id2label = nlohmann::ordered_json::object(), label2id = nlohmann::ordered_json::object();
  for (int c = 0; c < head.C; ++c) {
    // A regression head has no label names; HF calls its one output LABEL_0.
    const std::string name = info.labels.empty() ? "LABEL_" + std::to_string(c) : info.labels[std::size_t(c)];
    id2label[std::to_string(c)] = name;
    label2id[name] = c;
  }
  config["id2label"] = std::move(id2label);
  config["label2id"] = std::move(label2id);
  // Token classification has no problem_type (HF's loss is always cross-entropy over tokens).
  if (!info.per_token) config["problem_type"] = info.labels.empty() ? "regression" : "single_label_classification";
  detail::write_hf_directory(dst, m, tok, tensors, config);
  return info;
}

}  // namespace bitfit
