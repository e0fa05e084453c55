#pragma once
/// @file merge.hpp
/// One task as a standalone model: a backbone with a patch applied, written as a Hugging Face
/// BertForSequenceClassification directory for tools that know nothing of patches (HF
/// transformers, ONNX exporters, other servers). The patch stays the compact form (~0.4 MB at
/// BERT-base); the merged directory is a whole model (~440 MB).

#include <bitfit/model/convert.hpp>
#include <bitfit/train/head.hpp>
#include <bitfit/train/patch.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace bitfit {

/// Merges the patch at `patch` (a bias patch or a full checkpoint from `bitfit train`) into the
/// backbone at `model` and writes a standalone HF BertForSequenceClassification directory at `dst`:
/// the backbone with the patched biases, "classifier.*" from the patch's head, and a config with
/// the task's labels (id2label, label2id; problem_type regression for a one-output head). HF
/// transformers loads it with no missing or unexpected keys and predicts what the patch predicts
/// on the backbone. `dst` must not exist or be empty; it is whole or absent.
inline patch_info merge_to_hf(const std::filesystem::path& model, const std::filesystem::path& patch,
                              const std::filesystem::path& dst) {
  detail::check_output_dir(dst);
  const auto m = locate_model(model);
  const auto tok = load_tokenizer(model);
  auto params = load_bert_params<float>(model);
  task_head<float> head;
  const auto info = apply_patch(patch, params, head, backbone_id(params));
  // A tagger would be a BertForTokenClassification (no pooler); not written until it is checked
  // against HF as the sequence heads are (scripts/check-merge).
  check(!info.per_token, patch.string() + ": a token (tagging) patch; merge writes sequence classifiers only");
  auto tensors = detail::bert_tensors(params);
  tensors.push_back({"classifier.weight", {head.C, head.H}, head.W});
  tensors.push_back({"classifier.bias", {head.C}, head.b});
  auto config = detail::hf_config_json(params.config, false);
  config["architectures"] = {"BertForSequenceClassification"};
  config["finetuning_task"] = info.task;
  nlohmann::ordered_json id2label = nlohmann::ordered_json::object(), label2id = nlohmann::ordered_json::object();
  for (int c = 0; c < head.C; ++c) {
    // A regression head has no label names; HF calls its one output LABEL_0.
    const std::string name = info.labels.empty() ? "LABEL_" + std::to_string(c) : info.labels[std::size_t(c)];
    id2label[std::to_string(c)] = name;
    label2id[name] = c;
  }
  config["id2label"] = std::move(id2label);
  config["label2id"] = std::move(label2id);
  config["problem_type"] = info.labels.empty() ? "regression" : "single_label_classification";
  detail::write_hf_directory(dst, m, tok, tensors, config);
  return info;
}

}  // namespace bitfit
