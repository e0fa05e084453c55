#pragma once
/// @file task_bank.hpp
/// Many tasks over one frozen backbone: K bias patches in memory (each its bias block, ~0.4 MB
/// at BERT-base, and its head) beside one read-only backbone, and one forward over a batch whose
/// sequences belong to different tasks (encoder_forward_mixed). A patch may train a subset of the
/// bias terms: the terms it leaves out are the backbone's.
///
/// A task's head is a sequence head (on the pooler: classification or regression) or a per-token
/// head (a tagger: logits for every token), whatever the others in the batch are.
///
/// A sequence's outputs do not depend on what it is batched with (bit for bit in fp32 on the
/// oneDNN backend, one thread count; see encoder_mixed.hpp), and predict_logits() is the same
/// computation, so `bitfit predict` with one patch and a mixed batch of many agree exactly.
///
/// Thread-safe: classify() may run on many threads at once, each with its own encoder_state,
/// while tasks are loaded and unloaded. A call takes shared ownership of the tasks it uses when it
/// starts, so unloading a task never pauses or breaks a request already running.

#include <bitfit/model/encoder_mixed.hpp>
#include <bitfit/train/head.hpp>
#include <bitfit/train/patch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <string>
#include <vector>

namespace bitfit {

/// One task of a bank: a patch applied to a copy of the backbone's bias block.
struct bank_task {
  std::string name;
  patch_info info;           ///< the patch's metadata (task, labels, fine-tune type, ...)
  bert_params<float> biases;  ///< bias-only buffer: the backbone's biases with the patch applied
  task_head<float> head;     ///< (C, H); C = 1 for regression
  bool regression() const { return info.labels.empty(); }
  bool per_token() const { return head.per_token; }
};

/// A sequence to classify with task `task`: token ids and type ids with [CLS] ... [SEP].
struct task_input {
  std::string task;
  std::vector<std::int32_t> ids, types;
};

/// The head's outputs for one input: logits (C) of a classifier, the score of a regression, or
/// for a tagger (T, C) row-major: the logits of each of the input's T tokens ([CLS] and [SEP]
/// included; bitfit::word_predictions reads the words' tags from them).
struct task_output {
  std::shared_ptr<const bank_task> task;
  std::vector<float> logits;
};

class task_bank {
 public:
  /// The bank serves patches trained on `backbone` (identified by `backbone_id`, see
  /// backbone_id()); it never writes to it.
  task_bank(std::shared_ptr<const bert_params<float>> backbone, std::string backbone_id)
      : backbone_(std::move(backbone)), backbone_id_(std::move(backbone_id)) {
    check(backbone_ != nullptr, "task_bank: no backbone");
  }

  const bert_params<float>& backbone() const { return *backbone_; }

  /// Loads the bias patch at `path` as task `name`, all or nothing: a patch that does not apply
  /// (another backbone, a full checkpoint, a damaged file) changes nothing. Replaces a task of the
  /// same name only when `replace`; requests already running keep the old one.
  std::shared_ptr<const bank_task> load(const std::string& name, const std::filesystem::path& path, bool replace = false) {
    check(!name.empty(), path.string() + ": a task needs a name");
    auto t = std::make_shared<bank_task>(bank_task{name, {}, bert_params<float>(backbone_->config, false), {}});
    std::ranges::copy(backbone_->biases(), t->biases.biases().begin());
    t->info = apply_patch(path, t->biases, t->head, backbone_id_);
    check(t->info.kind == "bias", path.string() + ": a full checkpoint is a model of its own, not a patch of this backbone");
    std::unique_lock lock(mutex_);
    check(replace || !tasks_.count(name), "task '" + name + "' is already loaded");
    tasks_[name] = t;
    return t;
  }

  /// Unloads task `name`; false when there is none.
  bool unload(const std::string& name) {
    std::unique_lock lock(mutex_);
    return tasks_.erase(name) > 0;
  }

  /// The loaded tasks, by name.
  std::vector<std::shared_ptr<const bank_task>> tasks() const {
    std::shared_lock lock(mutex_);
    std::vector<std::shared_ptr<const bank_task>> out;
    for (const auto& [n, t] : tasks_) out.push_back(t);
    return out;
  }
  std::shared_ptr<const bank_task> find(const std::string& name) const {
    std::shared_lock lock(mutex_);
    const auto it = tasks_.find(name);
    return it == tasks_.end() ? nullptr : it->second;
  }

  /// Head outputs for inputs of any mix of tasks, in input order: one forward over the packed
  /// batch (grouped by task), then each task's head on its rows. `st` is the caller's (one per
  /// thread); nothing else is written. An unknown task is an error naming it, before any work.
  std::vector<task_output> classify(const std::vector<task_input>& xs, encoder_state<float>& st) const {
    std::vector<task_output> out(xs.size());
    if (xs.empty()) return out;
    {
      std::shared_lock lock(mutex_);
      for (std::size_t i = 0; i < xs.size(); ++i) {
        const auto it = tasks_.find(xs[i].task);
        check(it != tasks_.end(), "unknown task '" + xs[i].task + "'");
        out[i].task = it->second;
      }
    }
    // Group by task (stable: inputs of one task keep their order), one segment per task.
    std::vector<std::size_t> order(xs.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::ranges::stable_sort(order, std::less<>{}, [&](std::size_t i) { return out[i].task->name; });
    token_batch batch;
    std::vector<bias_segment<float>> segments;
    for (std::size_t k = 0; k < order.size(); ++k) {
      const auto& task = *out[order[k]].task;
      if (segments.empty() || segments.back().biases != &task.biases)
        segments.push_back({int(k), int(k), &task.biases});
      batch.add(xs[order[k]].ids, xs[order[k]].types);
      segments.back().last = int(k) + 1;
    }
    // The pooler only when a sequence head reads it (it does not change the hidden states).
    st.run_pooler = std::ranges::any_of(segments, [&](const auto& seg) { return !out[order[std::size_t(seg.first)]].task->per_token(); });
    encoder_forward_mixed(st, *backbone_, batch, std::span<const bias_segment<float>>(segments));
    const int H = backbone_->config.hidden_size;
    for (const auto& seg : segments) {
      const auto& task = *out[order[std::size_t(seg.first)]].task;
      const int C = task.head.C;
      // Rows of the head's input: a sequence each (pooled), or a token each (last hidden state).
      auto row_of = [&](int k) { return task.per_token() ? batch.offsets[std::size_t(k)] : k; };
      const int first = row_of(seg.first), rows = row_of(seg.last) - first;
      std::vector<float> logits(std::size_t(rows) * C);
      const float* in = task.per_token() ? st.last_hidden : st.pooled.data();
      detail::linear_forward_row_stable(logits.data(), in + std::size_t(first) * H, task.head.W.data(), task.head.b.data(),
                                        rows, H, C);
      for (int k = seg.first; k < seg.last; ++k)
        out[order[std::size_t(k)]].logits.assign(logits.begin() + std::ptrdiff_t(row_of(k) - first) * C,
                                                 logits.begin() + std::ptrdiff_t(row_of(k + 1) - first) * C);
    }
    return out;
  }

 private:
  std::shared_ptr<const bert_params<float>> backbone_;
  std::string backbone_id_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<const bank_task>> tasks_;
};

}  // namespace bitfit
