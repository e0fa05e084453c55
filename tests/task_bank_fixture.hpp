#pragma once
// Shared by the task-bank and batcher tests: synthetic patches (the backbone's biases plus noise,
// a random head) over the test model, and the reference outputs of a patch served alone.
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/serve/task_bank.hpp>
#include <bitfit/text/bert_tokenizer.hpp>
#include <bitfit/train/trainer.hpp>

#include <random>

namespace bitfit::test {

namespace fs = std::filesystem;

struct fixture {
  backbone loaded = load_backbone(model_dir());
  std::shared_ptr<const bert_params<float>> shared = std::make_shared<const bert_params<float>>(loaded.params);
  bert_tokenizer tok = load_tokenizer(model_dir());
  temp_dir dir;

  /// A patch of task `task` whose trained terms (`terms`) are the backbone's plus noise, and a
  /// head of `labels.size()` outputs (1, regression, when empty), on every token if `per_token`.
  fs::path make_patch(const std::string& file, const std::string& task, std::vector<std::string> labels,
                      const runtime_mask& terms, unsigned seed, bool per_token = false) const {
    bert_params<float> p = loaded.params;
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    std::vector<const param_entry*> entries;
    for (const auto& e : p.layout.entries) {
      if (!e.is_bias || !terms.trains(e.bias_term)) continue;
      for (auto& v : p.tensor(e)) v += noise(rng);
      entries.push_back(&e);
    }
    const int C = labels.empty() ? 1 : int(labels.size());
    auto head = task_head<float>::init(C, p.config.hidden_size, seed);
    head.per_token = per_token;
    patch_info info;
    info.task = task, info.fine_tune_type = "bitfit", info.bias_terms = bias_terms_string(terms);
    info.backbone_id = loaded.id, info.labels = std::move(labels), info.num_labels = C;
    const auto path = dir / file;
    save_patch(path, p, entries, head, info);
    return path;
  }

  /// Logits of `texts` in one batch, from a bank that holds `patch` alone.
  std::vector<float> alone(const fs::path& patch, const std::vector<std::string>& texts) const {
    task_bank bank(shared, loaded.id);
    bank.load("t", patch);
    std::vector<task_input> xs;
    for (const auto& t : texts) {
      const auto enc = tok.encode(t, 64);
      xs.push_back({"t", enc.input_ids, enc.token_type_ids});
    }
    encoder_state<float> st;
    std::vector<float> out;
    for (const auto& o : bank.classify(xs, st)) out.insert(out.end(), o.logits.begin(), o.logits.end());
    return out;
  }

  /// The same through sequence_classifier and predict_logits (the training code's forward).
  std::vector<float> model(const fs::path& patch, const std::vector<std::string>& texts) const {
    sequence_classifier m{loaded.params, {}};
    apply_patch(patch, m.params, m.head, loaded.id);
    token_batch batch;
    for (const auto& t : texts) {
      const auto enc = tok.encode(t, 64);
      batch.add(enc.input_ids, enc.token_type_ids);
    }
    encoder_state<float> st;
    return predict_logits(m, batch, st);
  }
};

inline const std::vector<std::string> sentences = {
    "a gripping, funny and deeply moving film .",
    "the plot is thin and the jokes fall flat",
    "it 's a movie .",
    "an utterly charming and hilarious film that reaches across the generations and never lets go",
    "worst of the year",
    "the cast is uniformly excellent , but the script lets them down at every turn",
    "no .",
};


}  // namespace bitfit::test
