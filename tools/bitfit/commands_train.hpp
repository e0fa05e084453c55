#pragma once
// `bitfit train` and `bitfit predict`: fine-tune a task patch on a GLUE task, and apply one.

#include "options.hpp"

#include <bitfit/bitfit.hpp>

#include <nlohmann/json.hpp>

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

namespace bitfit::cli {

/// A one-line progress bar on stderr: redrawn in place on a terminal, every 10% otherwise.
class progress {
 public:
  explicit progress(std::string label) : label_(std::move(label)), tty_(::isatty(2)) {}
  void update(std::size_t done, std::size_t total, double loss, double tokens_per_s) {
    const int pct = total ? int(100 * done / total) : 100;
    if (!tty_ && pct / 10 == last_ / 10 && done != total) return;
    last_ = pct;
    const int width = 30, fill = width * pct / 100;
    std::fprintf(stderr, "%s%s [%.*s%*s] %3d%% loss %.4f %.0f tok/s%s", tty_ ? "\r" : "", label_.c_str(), fill,
                 "##############################", width - fill, "", pct, loss, tokens_per_s, tty_ ? "" : "\n");
    if (tty_ && done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool tty_;
  int last_ = -10;
};

inline std::filesystem::path task_file(const std::filesystem::path& data_dir, const char* split) {
  auto p = data_dir / (std::string(split) + ".tsv");
  check(std::filesystem::exists(p), p.string() + ": not found (is --data-dir the task's GLUE folder?)");
  return p;
}

inline int run_train(int argc, char** argv) {
  options opt("train", "Fine-tunes a sequence classifier on a GLUE task and writes a bias patch (or a full checkpoint).",
              {{"task", "NAME", "sst2, rte, mrpc, cola, stsb, qnli, wnli", "", false, true},
               {"data-dir", "DIR", "the task's GLUE folder (train.tsv, dev.tsv)", "", false, true},
               {"model", "DIR", "the frozen backbone: a Hugging Face directory, a TF SavedModel or a bert_model.ckpt prefix", "", false, true},
               {"output-path", "DIR", "where metrics.json and the patch go", "", false, true},
               {"fine-tune-type", "TYPE", "bitfit, frozen, full_ft, rand_uniform, rand_row_col", "bitfit"},
               {"bias-terms", "TERM", "bias terms for bitfit: query key value attention_output attention_layernorm "
                                      "intermediate output output_layernorm embeddings_layernorm pooler, or all", "all", true},
               {"first-trainable-layer", "L", "bias terms below layer L stay frozen", "0"},
               {"learning-rate", "LR", "learning rate of the trained parameters", "1e-3"},
               {"head-learning-rate", "LR", "learning rate of the task head (default: --learning-rate)"},
               {"epochs", "N", "passes over train.tsv", "3"},
               {"batch-size", "N", "examples per step", "32"},
               {"max-seq-length", "N", "truncate to N tokens", "128"},
               {"seed", "N", "seed of head init, shuffling and dropout", "42"},
               {"dropout", "P", "hidden and attention dropout in training", "0.1"},
               {"max-grad-norm", "X", "global gradient-norm clip (0: off)", "1.0"},
               {"weight-decay", "X", "decoupled weight decay (AdamW)", "0"},
               {"optimizer", "NAME", "adamw or adam", "adamw"},
               {"warmup-steps", "N", "linear warm-up steps", "0"},
               {"linear-decay", "", "decay the learning rate linearly to 0"},
               {"bucket-by-length", "", "batch examples of similar length together"},
               {"max-train-examples", "N", "use only the first N training examples (0: all)", "0"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32, or in bf16 (CPUs with AVX512-BF16 or AMX; auto: bf16 where available)", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const auto task = glue_task_named(opt.str("task"));
  const std::filesystem::path data_dir = opt.str("data-dir"), model_dir = opt.str("model"), out_dir = opt.str("output-path");

  train_options t;
  t.type = parse_fine_tune_type(opt.choice("fine-tune-type", {"bitfit", "frozen", "full_ft", "rand_uniform", "rand_row_col"}));
  t.terms = parse_bias_terms(opt.list("bias-terms"));
  if (t.type == fine_tune_type::bitfit && t.terms.trains(term::bk))
    std::fprintf(stderr, "bitfit train: note: the gradient of key (bk) is identically zero (softmax shift invariance); "
                         "training it changes nothing\n");
  t.learning_rate = opt.real("learning-rate", 0, 10);
  t.head_learning_rate = opt.has("head-learning-rate") ? opt.real("head-learning-rate", 0, 10) : 0.0;
  t.epochs = int(opt.integer("epochs", 1, 1000));
  t.batch_size = int(opt.integer("batch-size", 1, 4096));
  t.seed = std::uint64_t(opt.integer("seed", 0, (1LL << 62)));
  t.hidden_dropout = t.attention_dropout = opt.real("dropout", 0, 0.99);
  t.max_grad_norm = opt.real("max-grad-norm", 0, 1e9);
  t.optimizer.weight_decay = opt.real("weight-decay", 0, 1);
  t.optimizer.decoupled = opt.choice("optimizer", {"adamw", "adam"}) == "adamw";
  t.warmup_steps = int(opt.integer("warmup-steps", 0, 1 << 30));
  t.linear_decay = opt.has("linear-decay");
  t.bucket_by_length = opt.has("bucket-by-length");

  const auto tok = load_tokenizer(model_dir);
  auto loaded = load_backbone(model_dir, parse_precision(opt.str("precision"), "--precision"));
  sequence_classifier model{std::move(loaded.params), {}};
  const auto& cfg = model.params.config;
  t.first_trainable_layer = int(opt.integer("first-trainable-layer", 0, cfg.num_hidden_layers - 1));
  const int max_len = int(opt.integer("max-seq-length", task.pair() ? 3 : 2, cfg.max_position_embeddings));
  model.head = task_head<float>::init(task.num_labels(), cfg.hidden_size, detail::derive_seed(t.seed, 0x4EAD));

  auto train_raw = read_glue_tsv(task_file(data_dir, "train"), task);
  const auto limit = std::size_t(opt.integer("max-train-examples", 0, 1LL << 40));
  if (limit && train_raw.size() > limit) train_raw.resize(limit);
  const auto train = encode_examples(tok, train_raw, task, max_len);
  const auto dev = encode_examples(tok, read_glue_tsv(task_file(data_dir, "dev"), task), task, max_len);
  for (const auto* set : {&train, &dev})
    for (const auto& x : *set) check(x.label >= 0, data_dir.string() + ": train/dev rows must be labelled");
  std::filesystem::create_directories(out_dir);
  const std::string backbone = loaded.id;

  nlohmann::json metrics = {{"task", task.name},
                            {"model", model_dir.string()},
                            {"backbone_id", backbone},
                            {"fine_tune_type", std::string(fine_tune_type_name(t.type))},
                            {"bias_terms", t.type == fine_tune_type::bitfit ? bias_terms_string(t.terms) : ""},
                            {"learning_rate", t.learning_rate},
                            {"epochs", t.epochs},
                            {"batch_size", t.batch_size},
                            {"max_seq_length", max_len},
                            {"seed", t.seed},
                            {"threads", omp_get_max_threads()},
                            {"precision", std::string(precision_name(loaded.weights))},
                            {"gemm_backend", std::string(backend_name(current_gemm_backend()))},
                            {"cpu", this_cpu().model},
                            {"train_examples", train.size()},
                            {"dev_examples", dev.size()},
                            {"epoch", nlohmann::json::array()}};
  const bool regression = task.labels.empty();

  return with_trainer(model, t, [&](auto& tr) {
    metrics["trained_parameters"] = tr.trained_parameters();
    std::fprintf(stderr, "bitfit train: %s %s, %zu trained parameters (%.4f%% of %zu), %zu train / %zu dev examples\n",
                 task.name.c_str(), std::string(fine_tune_type_name(t.type)).c_str(), tr.trained_parameters(),
                 100.0 * double(tr.trained_parameters()) / double(model.params.layout.total_size),
                 model.params.layout.total_size, train.size(), dev.size());
    auto save = [&] {
      patch_info info;
      info.kind = tr.trained_entries().empty() && t.type != fine_tune_type::bitfit && t.type != fine_tune_type::frozen ? "full" : "bias";
      info.task = task.name;
      info.fine_tune_type = std::string(fine_tune_type_name(t.type));
      info.bias_terms = metrics["bias_terms"];
      info.backbone_id = backbone;
      info.labels = task.labels;
      info.num_labels = task.num_labels();
      info.first_trainable_layer = t.first_trainable_layer;
      std::vector<const param_entry*> entries = tr.trained_entries();
      if (info.kind == "full")
        for (const auto& e : model.params.layout.entries) entries.push_back(&e);
      const auto file = out_dir / (info.kind == "full" ? "checkpoint.safetensors" : "patch.safetensors");
      save_patch(file, model.params, entries, model.head, info);
      write_file_atomic(out_dir / "metrics.json", metrics.dump(2) + "\n");
      return file;
    };
    long step = 0;
    const long steps_per_epoch = long((train.size() + std::size_t(t.batch_size) - 1) / std::size_t(t.batch_size));
    const long total = steps_per_epoch * t.epochs;
    try {
      for (int epoch = 1; epoch <= t.epochs; ++epoch) {
        const auto batches = epoch_batches(train, t.batch_size, detail::derive_seed(t.seed, 0xE90C + std::uint64_t(epoch)), t.bucket_by_length);
        progress bar("epoch " + std::to_string(epoch) + "/" + std::to_string(t.epochs));
        const auto start = std::chrono::steady_clock::now();
        double loss_sum = 0, tokens = 0;
        std::size_t done = 0;
        for (const auto& b : batches) {
          loss_sum += tr.step(train, b, ++step, total) * double(b.size());
          done += b.size();
          tokens += tr.last_tokens();
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          bar.update(done, train.size(), loss_sum / double(done), tokens / std::max(secs, 1e-9));
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const auto pred = predict(model, dev);
        nlohmann::json e = {{"epoch", epoch}, {"train_loss", loss_sum / double(train.size())}, {"seconds", secs},
                            {"train_tokens_per_s", tokens / secs}};
        if (regression) {
          double se = 0;
          for (std::size_t i = 0; i < dev.size(); ++i) se += (pred[i] - dev[i].score) * (pred[i] - dev[i].score);
          e["dev_mse"] = se / double(dev.size());
        } else {
          e["dev_accuracy"] = accuracy(pred, dev);
        }
        metrics["epoch"].push_back(e);
        std::fprintf(stderr, "epoch %d: train loss %.4f, dev %s %.4f, %.1f s\n", epoch, double(e["train_loss"]),
                     regression ? "mse" : "accuracy", double(regression ? e["dev_mse"] : e["dev_accuracy"]), secs);
        save();
      }
    } catch (const training_diverged& ex) {
      metrics["error"] = ex.what();
      const auto file = save();
      std::fprintf(stderr, "bitfit train: %s; last good parameters written to %s\n", ex.what(), file.c_str());
      return 1;
    }
    std::fprintf(stderr, "bitfit train: wrote %s and %s\n", (out_dir / "metrics.json").c_str(),
                 (out_dir / (t.type == fine_tune_type::bitfit || t.type == fine_tune_type::frozen ? "patch.safetensors" : "checkpoint.safetensors")).c_str());
    return 0;
  });
}

inline int run_predict(int argc, char** argv) {
  options opt("predict", "Applies a patch to the frozen backbone and predicts the text column(s) of a GLUE-format TSV.",
              {{"model", "DIR", "the backbone the patch was trained on (HF directory or TF checkpoint, any of them)", "", false, true},
               {"patch", "FILE", "patch.safetensors or checkpoint.safetensors from bitfit train", "", false, true},
               {"input", "FILE.tsv", "GLUE-format TSV of the patch's task (labelled or not)", "", false, true},
               {"output", "FILE.tsv", "predictions: index<TAB>prediction (written atomically)", "", false, true},
               {"max-seq-length", "N", "truncate to N tokens", "128"},
               {"batch-size", "N", "sequences per forward pass", "64"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32, or in bf16 (CPUs with AVX512-BF16 or AMX; auto: bf16 where available)", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const std::filesystem::path model_dir = opt.str("model");
  const auto tok = load_tokenizer(model_dir);
  auto loaded = load_backbone(model_dir, parse_precision(opt.str("precision"), "--precision"));
  sequence_classifier model{std::move(loaded.params), {}};
  const std::string patch = opt.str("patch");
  const auto info = apply_patch(patch, model.params, model.head, loaded.id);
  glue_task task;
  try {
    task = glue_task_named(info.task);
  } catch (const error& e) {
    throw error(patch + ": " + e.what());
  }
  // The output column and the accuracy index the task's labels by the head's class id.
  auto outputs = [](int n, const std::vector<std::string>& labels) {
    std::string s = std::to_string(n) + (n == 1 ? " output (" : " outputs (");
    for (const auto& l : labels) s += (&l == labels.data() ? "" : ", ") + l;
    return s + (labels.empty() ? "regression)" : ")");
  };
  check(task.num_labels() == info.num_labels && task.labels == info.labels,
        patch + ": its head has " + outputs(info.num_labels, info.labels) + " but task " + task.name + " has " +
            outputs(task.num_labels(), task.labels));
  const int max_len = int(opt.integer("max-seq-length", task.pair() ? 3 : 2, model.params.config.max_position_embeddings));
  const auto raw = read_glue_tsv(opt.str("input"), task);
  const auto xs = encode_examples(tok, raw, task, max_len);
  const auto pred = predict(model, xs, int(opt.integer("batch-size", 1, 4096)));
  std::string out = "index\tprediction\n";
  std::size_t labelled = 0, correct = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::string idx = raw[i].index.empty() ? std::to_string(i) : raw[i].index;
    const float y = pred[i];  // a class id (argmax over the head's num_labels outputs) or a regression value
    const bool is_class = !task.labels.empty();
    check(!is_class || (y >= 0 && y < float(task.labels.size())),
          patch + ": prediction " + std::to_string(y) + " is not a class id of task " + task.name);
    out += idx + "\t" + (is_class ? task.labels[std::size_t(y)] : std::to_string(y)) + "\n";
    if (xs[i].label >= 0 && is_class) ++labelled, correct += y == float(xs[i].label);
  }
  write_file_atomic(opt.str("output"), out);
  if (labelled)
    std::printf("accuracy %.4f (%zu/%zu)\n", double(correct) / double(labelled), correct, labelled);
  std::fprintf(stderr, "bitfit predict: %zu predictions -> %s\n", xs.size(), opt.str("output").c_str());
  return 0;
}

}  // namespace bitfit::cli
