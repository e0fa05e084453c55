#pragma once
// `bitfit train`, `bitfit evaluate` and `bitfit predict`: fine-tune a task patch on a GLUE task
// (the original repository's run_glue.py, flag for flag), re-score a saved patch, apply one.

#include "options.hpp"

#include <bitfit/bitfit.hpp>

#include <nlohmann/json.hpp>

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>

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

/// $BITFIT_DATA_DIR, default ../shared/data: where glue/<TASK>/ and ud_english_ewt/ are.
inline std::filesystem::path data_root() {
  const char* root = std::getenv("BITFIT_DATA_DIR");
  return root && *root ? root : "../shared/data";
}

/// `--data-dir`, or the task's GLUE folder under data_root()/glue.
inline std::filesystem::path task_data_dir(const options& opt, const glue_task& task) {
  if (opt.has("data-dir")) return opt.str("data-dir");
  return data_root() / "glue" / glue_folder(task);
}

/// `-m/--model-name`: a model directory (or TF checkpoint prefix), or a name that
/// scripts/fetch-model lays out under $BITFIT_MODELS_DIR (default: models/).
inline std::filesystem::path resolve_model(const std::string& name) {
  const std::filesystem::path p = name;
  if (std::filesystem::exists(p) || std::filesystem::exists(p.string() + ".index")) return p;
  if (name.find('/') == std::string::npos) {
    const char* root = std::getenv("BITFIT_MODELS_DIR");
    const auto fetched = std::filesystem::path(root && *root ? root : "models") / name;
    if (std::filesystem::exists(fetched)) return fetched;
    throw error(name + ": no such model directory, and not fetched under " + fetched.parent_path().string() +
                " (run scripts/fetch-model " + name + ")");
  }
  throw error(name + ": no such model directory or checkpoint");
}

inline std::filesystem::path split_file(const std::filesystem::path& data_dir, const std::string& file) {
  auto p = data_dir / file;
  check(std::filesystem::exists(p), p.string() + ": not found (is --data-dir the task's GLUE folder?)");
  return p;
}

/// The task's metrics (glue_metrics) of predictions on labelled examples, as a JSON object.
inline nlohmann::json score(const glue_task& task, const std::vector<float>& pred, const std::vector<encoded_example>& xs) {
  std::vector<float> gold(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) gold[i] = task.labels.empty() ? xs[i].score : float(xs[i].label);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : glue_metrics(task, pred, gold)) out[name] = value;
  return out;
}

/// "accuracy 0.8125, f1 0.8650": a metrics object on one line.
inline std::string metrics_line(const nlohmann::json& m) {
  std::string s;
  char buf[64];
  for (const auto& [k, v] : m.items()) {
    if (v.is_number_integer())  // a count (POS: words scored)
      std::snprintf(buf, sizeof buf, "%s%s %lld", s.empty() ? "" : ", ", k.c_str(), v.get<long long>());
    else
      std::snprintf(buf, sizeof buf, "%s%s %.4f", s.empty() ? "" : ", ", k.c_str(), v.is_number() ? v.get<double>() : NAN);
    s += buf;
  }
  return s;
}

/// The examples of a labelled split (`what`: "dev", "training"), the first `limit` rows (0: all).
inline std::vector<encoded_example> read_labelled(const bert_tokenizer& tok, const std::filesystem::path& file,
                                                  const glue_task& task, int max_len, const char* what,
                                                  std::size_t limit = 0) {
  auto raw = read_glue_tsv(file, task);
  if (limit && raw.size() > limit) raw.resize(limit);
  auto xs = encode_examples(tok, raw, task, max_len);
  for (const auto& x : xs) check(x.label >= 0, file.string() + ": " + what + " rows must be labelled");
  return xs;
}

/// Labelled examples of each dev split (MNLI: matched and mismatched).
struct eval_set {
  std::string name;
  std::vector<encoded_example> xs;
};

inline std::vector<eval_set> read_dev_sets(const bert_tokenizer& tok, const std::filesystem::path& data_dir,
                                           const glue_task& task, int max_len) {
  std::vector<eval_set> out;
  for (const auto& s : glue_dev_splits(task))
    out.push_back({s.name, read_labelled(tok, split_file(data_dir, s.file), task, max_len, "dev")});
  return out;
}

/// A test split: its rows (for their index column) and their encodings.
struct test_set {
  glue_split split;
  std::vector<glue_example> rows;
  std::vector<encoded_example> xs;
};

inline std::vector<test_set> read_test_sets(const bert_tokenizer& tok, const std::filesystem::path& data_dir,
                                            const glue_task& task, int max_len) {
  std::vector<test_set> out;
  for (const auto& s : glue_test_splits(task)) {
    auto rows = read_glue_tsv(split_file(data_dir, s.file), task);
    auto xs = encode_examples(tok, rows, task, max_len);
    out.push_back({s, std::move(rows), std::move(xs)});
  }
  return out;
}

/// What `bitfit train` needs of a task, whatever its data: a GLUE sentence (pair) task or POS
/// tagging on CoNLL-U. The epoch loop, resume, patches and metrics.json are the same for all.
struct train_task {
  std::string name;                 ///< "sst2", ..., "pos"
  std::vector<std::string> labels;  ///< class names in id order; empty: regression
  bool per_token = false;           ///< one class per word (the head on every token, no pooler)
  std::string metric;               ///< the primary metric, which picks the best epoch
  std::vector<encoded_example> train;
  std::vector<eval_set> dev;
  nlohmann::json config = nlohmann::json::object();  ///< task settings a resumed run must share
  /// The task's metrics of `model` on labelled examples.
  std::function<nlohmann::json(const sequence_classifier&, const std::vector<encoded_example>&, encoder_state<float>&)> score;
  /// At each new best epoch: test predictions under `out_dir` (if asked for); returns what to
  /// record beside the best epoch (POS: the test accuracy), or null.
  std::function<nlohmann::json(const sequence_classifier&, encoder_state<float>&, const std::filesystem::path&)> on_best;
  int num_labels() const { return labels.empty() ? 1 : int(labels.size()); }
};

/// A GLUE task from its folder: train.tsv (the first `limit` rows), the dev split(s) and, with
/// `predict_test`, the test split(s) whose GLUE-server files are rewritten at each best epoch.
inline train_task glue_train_task(const bert_tokenizer& tok, const glue_task& task, const std::filesystem::path& data_dir,
                                  int max_len, std::size_t limit, bool predict_test) {
  train_task tt{task.name, task.labels, false, primary_metric(task), {}, {}, nlohmann::json::object(), {}, {}};
  tt.train = read_labelled(tok, split_file(data_dir, "train.tsv"), task, max_len, "training", limit);
  tt.dev = read_dev_sets(tok, data_dir, task, max_len);
  tt.score = [task](const sequence_classifier& m, const std::vector<encoded_example>& xs, encoder_state<float>& st) {
    return score(task, predict(m, xs, st), xs);
  };
  // Read once: the files are rewritten whenever dev improves.
  auto test = std::make_shared<std::vector<test_set>>(predict_test ? read_test_sets(tok, data_dir, task, max_len)
                                                                   : std::vector<test_set>{});
  tt.on_best = [task, test](const sequence_classifier& m, encoder_state<float>& st, const std::filesystem::path& out_dir) {
    if (!test->empty()) std::filesystem::create_directories(out_dir / "test");
    for (const auto& ts : *test)
      write_file_atomic(out_dir / "test" / ts.split.submission, glue_submission_tsv(task, ts.rows, predict(m, ts.xs, st)));
    return nlohmann::json();
  };
  return tt;
}

/// Sentences of a CoNLL-U file as token examples: the words through encode_words, the first
/// sub-token of each word labelled with its tag (tag_set::word_labels), the rest ignore_label.
/// Returns the number of words cut at max_len (they have no prediction) in `truncated`.
inline std::vector<encoded_example> encode_tagged(const bert_tokenizer& tok, const std::vector<conllu_sentence>& sentences,
                                                  const tag_set& tags, const std::string& source, int max_len,
                                                  std::size_t& truncated) {
  std::vector<encoded_example> out;
  out.reserve(sentences.size());
  truncated = 0;
  for (const auto& s : sentences) {
    const auto enc = tok.encode_words(word_forms(s), max_len);
    truncated += enc.truncated_words;
    encoded_example x{enc.input_ids, enc.token_type_ids, -1, 0.0f, {}};
    x.token_labels = first_subtoken_labels(enc.word_ids, tags.word_labels(s, source));
    out.push_back(std::move(x));
  }
  return out;
}

/// The CoNLL-U file of `split` ("train", "dev", "test") in a UD treebank folder: *-ud-<split>.conllu.
inline std::filesystem::path ud_split_file(const std::filesystem::path& data_dir, const std::string& split) {
  check(std::filesystem::is_directory(data_dir), data_dir.string() + ": not a directory (--data-dir: a UD treebank folder)");
  for (const auto& f : std::filesystem::directory_iterator(data_dir))
    if (f.path().filename().string().ends_with("-ud-" + split + ".conllu")) return f.path();
  throw error(data_dir.string() + ": no *-ud-" + split + ".conllu (is --data-dir a UD treebank folder?)");
}

/// `--data-dir`, or UD English-EWT under data_root().
inline std::filesystem::path pos_data_dir(const options& opt) {
  return opt.has("data-dir") ? std::filesystem::path(opt.str("data-dir")) : data_root() / "ud_english_ewt";
}

/// POS word accuracy of a per-token model on tagged examples (encode_tagged), with the number of
/// words scored.
inline nlohmann::json pos_score(const sequence_classifier& m, const std::vector<encoded_example>& xs, encoder_state<float>& st,
                                int batch_size = 64) {
  std::size_t words = 0;
  for (const auto& x : xs) words += std::size_t(std::ranges::count_if(x.token_labels, [](int y) { return y != ignore_label; }));
  return nlohmann::json{{"accuracy", token_accuracy(predict_tokens(m, xs, st, batch_size), xs)}, {"words", words}};
}

/// POS tagging (the paper's token-level task) on a UD treebank folder with
/// *-ud-{train,dev,test}.conllu: the tag set (UPOS or XPOS) from train; word accuracy on dev each
/// epoch and on test at each best epoch (the paper reports test). Training sentences are cut at
/// `max_len` tokens; dev and test at `eval_len` (the model's 512 positions), so that every word
/// is scored (a word that does not fit is counted, and reported, as cut).
inline train_task pos_train_task(const bert_tokenizer& tok, tag_column column, const std::filesystem::path& data_dir,
                                 int max_len, int eval_len, std::size_t limit) {
  const auto train_file = ud_split_file(data_dir, "train"), dev_file = ud_split_file(data_dir, "dev"),
             test_file = ud_split_file(data_dir, "test");
  auto train_sentences = read_conllu(train_file);
  const auto tags = make_tag_set(train_sentences, column);  // from every training sentence, even with a limit
  if (limit && train_sentences.size() > limit) train_sentences.resize(limit);
  train_task tt{"pos", tags.tags, true, "accuracy", {}, {}, {{"tagset", tag_column_name(column)}}, {}, {}};
  std::size_t train_cut = 0, dev_cut = 0, test_cut = 0;
  tt.train = encode_tagged(tok, train_sentences, tags, train_file.string(), max_len, train_cut);
  tt.dev.push_back({"dev", encode_tagged(tok, read_conllu(dev_file), tags, dev_file.string(), eval_len, dev_cut)});
  auto test = std::make_shared<std::vector<encoded_example>>(
      encode_tagged(tok, read_conllu(test_file), tags, test_file.string(), eval_len, test_cut));
  tt.config["words_cut"] = {{"train", train_cut}, {"dev", dev_cut}, {"test", test_cut}};
  if (train_cut + dev_cut + test_cut)
    std::fprintf(stderr, "bitfit train: note: words cut (no prediction): %zu train (at %d tokens), %zu dev, %zu test\n",
                 train_cut, max_len, dev_cut, test_cut);
  tt.score = [](const sequence_classifier& m, const std::vector<encoded_example>& xs, encoder_state<float>& st) {
    return pos_score(m, xs, st);
  };
  tt.on_best = [test](const sequence_classifier& m, encoder_state<float>& st, const std::filesystem::path&) {
    return nlohmann::json{{"test", pos_score(m, *test, st)}};
  };
  return tt;
}

/// Tags for the words of CoNLL-U sentences by a per-token model: per sentence, per word, a tag
/// id or -1 for a word without a prediction (cut at `max_len` tokens, counted in `cut`). With
/// `logits`, also the head's outputs on every token (predict_tokens).
inline std::vector<std::vector<int32_t>> tag_sentences(const sequence_classifier& m, const bert_tokenizer& tok,
                                                       const std::vector<conllu_sentence>& sentences, int max_len,
                                                       int batch_size, std::size_t& cut,
                                                       std::vector<float>* logits = nullptr) {
  std::vector<encoded_example> xs;
  std::vector<std::vector<int32_t>> word_ids;
  cut = 0;
  for (const auto& s : sentences) {
    auto enc = tok.encode_words(word_forms(s), max_len);
    cut += enc.truncated_words;
    xs.push_back({std::move(enc.input_ids), std::move(enc.token_type_ids), -1, 0.0f, {}});
    word_ids.push_back(std::move(enc.word_ids));
  }
  encoder_state<float> st;
  const auto classes = predict_tokens(m, xs, st, batch_size, logits);
  std::vector<std::vector<int32_t>> out;
  out.reserve(sentences.size());
  for (std::size_t i = 0; i < sentences.size(); ++i)
    out.push_back(word_predictions(word_ids[i], classes[i], sentences[i].words.size()));
  return out;
}

/// An epoch's running totals in a state file (--save-minutes): exact, since JSON numbers
/// round-trip (nlohmann writes the shortest form that reads back to the same double).
inline nlohmann::json step_report_to_json(const step_report& r) {
  return {{"epoch", r.epoch}, {"batches", r.batches}, {"done", r.done}, {"total", r.total},
          {"loss_sum", r.loss_sum}, {"tokens", r.tokens}, {"seconds", r.seconds}};
}

/// The inverse of step_report_to_json, at the run's step `step`.
inline step_report step_report_from_json(const nlohmann::json& j, long step) {
  step_report r;
  r.step = step;
  r.epoch = j.at("epoch").get<int>();
  r.batches = j.at("batches").get<std::size_t>(), r.done = j.at("done").get<std::size_t>();
  r.total = j.at("total").get<std::size_t>();
  r.loss_sum = j.at("loss_sum").get<double>(), r.tokens = j.at("tokens").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.loss = r.done ? r.loss_sum / double(r.done) : 0.0;
  return r;
}

inline int run_train(int argc, char** argv) {
  options opt("train",
              "Fine-tunes a sequence classifier on a GLUE task, or a tagger on a UD treebank (-t pos), and writes a "
              "bias patch (or a full checkpoint): the original run_glue.py, flag for flag. Every epoch scores dev (and "
              "train), appends to metrics.json, keeps the best epoch's patch beside the last, and saves what --resume needs.",
              {{"-t,--task-name,--task", "NAME", "sst2, rte, mrpc, cola, stsb, qnli, wnli, mnli, qqp, or pos (UD POS tagging)", "", false, true},
               {"tagset", "upos|xpos", "pos: the tag column (XPOS is EWT's Penn Treebank set, the paper's)", "upos"},
               {"-o,--output-path", "DIR", "where metrics.json, the patches and the state go", "", false, true},
               {"-m,--model-name,--model", "DIR|NAME", "the frozen backbone: an HF directory, a TF SavedModel, a bert_model.ckpt "
                                               "prefix, or a name scripts/fetch-model knows (bert-base-cased, ...)", "", false, true},
               {"data-dir", "DIR", "the task's GLUE folder; pos: a UD treebank folder (*-ud-{train,dev,test}.conllu)",
                "$BITFIT_DATA_DIR/glue/<TASK>, $BITFIT_DATA_DIR/ud_english_ewt; BITFIT_DATA_DIR defaults to ../shared/data"},
               {"-f,--fine-tune-type", "TYPE", "bitfit, frozen, full_ft, rand_uniform, rand_row_col", "bitfit"},
               {"bias-terms", "TERM", "bias terms for bitfit: query key value attention_output attention_layernorm "
                                      "intermediate output output_layernorm embeddings_layernorm pooler, or all", "all", true},
               {"first-trainable-layer", "L", "bias terms below layer L (and the embeddings) stay frozen", "0"},
               {"-l,--learning-rate", "LR", "learning rate of the trained backbone parameters, and of the bias groups without one (0 freezes them)", "1e-3"},
               {"head-learning-rate", "LR", "learning rate of the task head (default: --learning-rate; 0 freezes it)"},
               {"attention-learning-rate", "LR", "bitfit: of the attention biases bq bk bv bm1 (default: --learning-rate; 0 freezes them)"},
               {"mlp-learning-rate", "LR", "bitfit: of the MLP biases bm2 bm3 (default: --learning-rate; 0 freezes them)"},
               {"layernorm-learning-rate", "LR", "bitfit: of the LayerNorm biases bLN1 bLN2 emb_bLN (default: --learning-rate; 0 freezes them)"},
               {"-e,--epochs", "N", "passes over train.tsv", "3"},
               {"-b,--batch-size", "N", "examples per step", "32"},
               {"max-seq-length", "N", "truncate to N tokens", "128"},
               {"-s,--seed", "N", "seed of head init, shuffling and dropout", "42"},
               {"dropout", "P", "hidden and attention dropout in training", "0.1"},
               {"max-grad-norm", "X", "global gradient-norm clip (0: off)", "1.0"},
               {"weight-decay", "X", "decoupled weight decay (AdamW)", "0"},
               {"optimizer", "NAME", "adamw or adam", "adamw"},
               {"adam-epsilon", "X", "Adam's epsilon: torch.optim's default (the original run_glue.py's transformers "
                                     "AdamW uses 1e-6)", "1e-8"},
               {"warmup-steps", "N", "linear warm-up steps", "0"},
               {"linear-decay", "", "decay the learning rate linearly to 0"},
               {"bucket-by-length", "", "batch examples of similar length together"},
               {"max-train-examples", "N", "use only the first N training examples (0: all)", "0"},
               {"no-train-eval", "", "do not score the training set after each epoch (the generalization gap)"},
               {"train-eval-examples", "N", "score train on N examples drawn at random (by --seed, the same every epoch); 0: all", "0"},
               {"predict-test", "", "write the GLUE-server test files (test/SST-2.tsv, ...) of the best dev epoch"},
               {"save-evaluator", "", "also keep every epoch's patch (epoch-N-patch.safetensors) for bitfit evaluate"},
               {"resume", "", "continue the run in --output-path from its last save (bit-identical)"},
               {"save-minutes", "M", "also save what --resume needs within an epoch, at the first step M minutes after "
                                     "the last save (0: at the end of each epoch only)", "0"},
               {"verbose", "", "log loss, gradient norm and learning rate every 10 steps"},
               {"gpu-device", "N", "accepted for run_glue.py's command lines and ignored: bitfit runs on the CPU"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32, or in bf16 (CPUs with AVX512-BF16 or AMX; auto: bf16 where available)", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const bool pos = opt.str("task-name") == "pos";
  const auto glue = pos ? glue_task{} : glue_task_named(opt.str("task-name"));
  const std::filesystem::path data_dir = pos ? pos_data_dir(opt) : task_data_dir(opt, glue);
  const std::filesystem::path model_dir = resolve_model(opt.str("model-name")), out_dir = opt.str("output-path");

  train_options t;
  t.type = parse_fine_tune_type(opt.choice("fine-tune-type", {"bitfit", "frozen", "full_ft", "rand_uniform", "rand_row_col"}));
  const auto named = opt.list("bias-terms");
  t.terms = parse_bias_terms(named);
  if (t.type == fine_tune_type::bitfit && std::find(named.begin(), named.end(), "key") != named.end())
    std::fprintf(stderr, "bitfit train: note: the gradient of key (bk) is identically zero (softmax shift invariance); "
                         "training it changes nothing\n");
  t.learning_rate = opt.real("learning-rate", 0, 10);
  for (auto [flag, rate] : {std::pair{"head-learning-rate", &t.head_learning_rate},
                            std::pair{"attention-learning-rate", &t.attention_learning_rate},
                            std::pair{"mlp-learning-rate", &t.mlp_learning_rate},
                            std::pair{"layernorm-learning-rate", &t.layernorm_learning_rate}})
    if (opt.has(flag)) *rate = opt.real(flag, 0, 10);
  check_rates(t);
  t.epochs = int(opt.integer("epochs", 1, 1000));
  t.batch_size = int(opt.integer("batch-size", 1, 4096));
  t.seed = std::uint64_t(opt.integer("seed", 0, (1LL << 62)));
  t.hidden_dropout = t.attention_dropout = opt.real("dropout", 0, 0.99);
  t.max_grad_norm = opt.real("max-grad-norm", 0, 1e9);
  t.optimizer.weight_decay = opt.real("weight-decay", 0, 1);
  t.optimizer.decoupled = opt.choice("optimizer", {"adamw", "adam"}) == "adamw";
  t.optimizer.eps = opt.real("adam-epsilon", 0, 1);
  // 0 would divide 0 by 0 for a parameter whose gradient has always been 0 (bk's, exactly).
  check(t.optimizer.eps > 0, opt.prefix() + "--adam-epsilon must be positive, got " + opt.str("adam-epsilon"));
  t.warmup_steps = int(opt.integer("warmup-steps", 0, 1 << 30));
  t.linear_decay = opt.has("linear-decay");
  t.bucket_by_length = opt.has("bucket-by-length");
  const bool train_eval = !opt.has("no-train-eval"), verbose = opt.has("verbose");
  const double save_minutes = opt.real("save-minutes", 0, 1e6);
  if (opt.has("gpu-device")) std::fprintf(stderr, "bitfit train: note: --gpu-device is ignored (bitfit runs on the CPU)\n");
  const auto limit = std::size_t(opt.integer("max-train-examples", 0, 1LL << 40));
  const auto train_eval_n = std::size_t(opt.integer("train-eval-examples", 0, 1LL << 40));
  check(!(opt.has("no-train-eval") && opt.has("train-eval-examples")),
        opt.prefix() + "--train-eval-examples scores train, --no-train-eval does not: give one");

  // The data before the model: a bad --data-dir or file fails in seconds, not after loading.
  const auto tok = load_tokenizer(model_dir);
  const int max_positions = load_model_config(model_dir).max_position_embeddings;
  const int max_len = int(opt.integer("max-seq-length", !pos && glue.pair() ? 3 : 2, max_positions));
  const auto tt = pos ? pos_train_task(tok, tag_column_named(opt.choice("tagset", {"upos", "xpos"})), data_dir, max_len,
                                       max_positions, limit)
                      : glue_train_task(tok, glue, data_dir, max_len, limit, opt.has("predict-test"));
  const auto& train = tt.train;
  const auto& dev = tt.dev;
  auto loaded = load_backbone(model_dir, parse_precision(opt.str("precision"), "--precision"));
  sequence_classifier model{std::move(loaded.params), {}};
  const auto& cfg = model.params.config;
  t.first_trainable_layer = int(opt.integer("first-trainable-layer", 0, cfg.num_hidden_layers - 1));
  model.head = task_head<float>::init(tt.num_labels(), cfg.hidden_size, detail::derive_seed(t.seed, 0x4EAD));
  model.head.per_token = tt.per_token;
  std::filesystem::create_directories(out_dir);
  const std::string backbone = loaded.id, metric = tt.metric;

  // The terms the run trains: those chosen that its head runs (as the trainer does).
  runtime_mask trained_terms;
  for (term b : all_terms)
    if (t.terms.trains(b) && head_runs(b, tt.per_token)) trained_terms.add(b);
  // What determines the result: a resumed run must have been started with the same.
  nlohmann::json run_config = {{"task", tt.name},
                                     {"backbone_id", backbone},
                                     {"fine_tune_type", std::string(fine_tune_type_name(t.type))},
                                     {"bias_terms", t.type == fine_tune_type::bitfit ? bias_terms_string(trained_terms) : ""},
                                     {"first_trainable_layer", t.first_trainable_layer},
                                     {"learning_rate", t.learning_rate},
                                     {"head_learning_rate", t.rate(lr_group::head)},
                                     {"attention_learning_rate", t.rate(lr_group::attention)},
                                     {"mlp_learning_rate", t.rate(lr_group::mlp)},
                                     {"layernorm_learning_rate", t.rate(lr_group::layernorm)},
                                     {"epochs", t.epochs},
                                     {"batch_size", t.batch_size},
                                     {"max_seq_length", max_len},
                                     {"seed", t.seed},
                                     {"dropout", t.hidden_dropout},
                                     {"max_grad_norm", t.max_grad_norm},
                                     {"weight_decay", t.optimizer.weight_decay},
                                     {"optimizer", t.optimizer.decoupled ? "adamw" : "adam"},
                                     {"adam_epsilon", t.optimizer.eps},
                                     {"warmup_steps", t.warmup_steps},
                                     {"linear_decay", t.linear_decay},
                                     {"bucket_by_length", t.bucket_by_length},
                                     {"train_examples", train.size()},
                                     {"precision", std::string(precision_name(loaded.weights))},
                                     {"threads", omp_get_max_threads()}};
  run_config.update(tt.config);
  // A sample of train for the generalization gap: scoring all of it each epoch is a third of a
  // bias-only RTE epoch, and hours for MNLI's 393k pairs on 2 cores.
  run_config["train_eval_examples"] = train_eval_n;
  std::vector<encoded_example> train_sample;
  if (train_eval && train_eval_n > 0 && train_eval_n < train.size()) {
    std::vector<std::size_t> order(train.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    detail::shuffle(order, detail::derive_seed(t.seed, 0x7E4A1));
    order.resize(train_eval_n);
    std::ranges::sort(order);
    for (auto i : order) train_sample.push_back(train[i]);
  }
  const auto& train_scored = train_sample.empty() ? train : train_sample;
  nlohmann::json metrics = run_config;
  metrics.update({{"model", model_dir.string()},
                  {"gemm_backend", std::string(backend_name(current_gemm_backend()))},
                  {"cpu", this_cpu().describe()},
                  {"primary_metric", metric},
                  {"dev_examples", dev.front().xs.size()},
                  {"train_scored_examples", train_eval ? train_scored.size() : 0},
                  {"epoch", nlohmann::json::array()}});
  const auto state_file = out_dir / "state.safetensors";

  return with_trainer(model, t, [&](auto& tr) {
    metrics["trained_parameters"] = tr.trained_parameters();
    const bool full = tr.trained_entries().empty() && t.type != fine_tune_type::bitfit && t.type != fine_tune_type::frozen;
    const std::string patch_name = full ? "checkpoint.safetensors" : "patch.safetensors";
    auto save_patch_as = [&](const std::filesystem::path& file) {
      patch_info info;
      info.kind = full ? "full" : "bias";
      info.task = tt.name;
      info.fine_tune_type = std::string(fine_tune_type_name(t.type));
      info.bias_terms = run_config["bias_terms"];
      info.backbone_id = backbone;
      info.labels = tt.labels;
      info.num_labels = tt.num_labels();
      info.first_trainable_layer = t.first_trainable_layer;
      info.tagset = tt.config.value("tagset", "");
      std::vector<const param_entry*> entries = tr.trained_entries();
      if (full)
        for (const auto& e : model.params.layout.entries) entries.push_back(&e);
      save_patch(file, model.params, entries, model.head, info);
    };

    // --resume continues only the run these options describe.
    auto same_run = [&](nlohmann::json saved, const std::filesystem::path& file) {
      // A run recorded before the group rates existed trained every bias at its learning_rate.
      for (const char* group : {"attention_learning_rate", "mlp_learning_rate", "layernorm_learning_rate"})
        if (!saved.contains(group) && saved.contains("learning_rate")) saved[group] = saved["learning_rate"];
      // One recorded before --train-eval-examples scored all of train; before --adam-epsilon, its default.
      if (!saved.contains("train_eval_examples")) saved["train_eval_examples"] = 0;
      if (!saved.contains("adam_epsilon")) saved["adam_epsilon"] = adamw_config{}.eps;
      std::string diff;
      for (const auto& [k, v] : run_config.items())
        if (const auto was = saved.value(k, nlohmann::json()); was != v)
          diff += (diff.empty() ? "" : "; ") + k + ": was " + was.dump() + ", now " + v.dump();
      check(diff.empty(), file.string() + ": the run there was started with other options (" + diff +
                              "); resume with the same options, or use another --output-path");
    };
    if (opt.has("resume") && !std::filesystem::exists(state_file) && std::filesystem::exists(out_dir / "metrics.json")) {
      const auto done = nlohmann::json::parse(detail::read_file(out_dir / "metrics.json"), nullptr, false);
      if (done.is_object() && done.value("finished", false)) {
        same_run(done, out_dir / "metrics.json");
        std::fprintf(stderr, "bitfit train: %s already holds the finished run\n", out_dir.c_str());
        return 0;
      }
    }
    int first_epoch = 1;
    long step = 0;
    double best = -INFINITY;
    std::optional<step_report> within;  // where an epoch saved mid-way resumes (--save-minutes)
    if (opt.has("resume") && std::filesystem::exists(state_file)) {
      const auto meta = tr.load_state(state_file);
      nlohmann::json saved;
      // The metadata is ours, but not covered by the data digest: a damaged file names itself.
      try {
        saved = nlohmann::json::parse(meta.at("metrics"));
        first_epoch = std::stoi(meta.at("epoch")) + 1;
        step = std::stol(meta.at("step"));
        if (meta.contains("within_epoch")) within = step_report_from_json(nlohmann::json::parse(meta.at("within_epoch")), step);
        metrics["epoch"] = saved.at("epoch");
        // A save within the first epoch has no best epoch yet.
        if (saved.contains("best")) {
          metrics["best_epoch"] = saved.at("best_epoch");
          metrics["best"] = saved.at("best");
          const auto& v = saved["best"].at("value");
          best = v.is_number() ? v.get<double>() : -INFINITY;
        }
      } catch (const std::exception& e) {  // nlohmann::json's, std::stoi's, std::map::at's
        throw error(state_file.string() + ": malformed training state metadata (" + e.what() + ")");
      }
      same_run(saved, state_file);
      if (within)
        check(within->epoch == first_epoch && within->total == train.size(),
              state_file.string() + ": saved within epoch " + std::to_string(within->epoch) + " of " +
                  std::to_string(within->total) + " examples, but it resumes epoch " + std::to_string(first_epoch) +
                  " of " + std::to_string(train.size()));
      std::fprintf(stderr, "bitfit train: resuming %s after epoch %d (step %ld)%s\n", out_dir.c_str(), first_epoch - 1, step,
                   within ? (", within epoch " + std::to_string(within->epoch) + " after " + std::to_string(within->batches) +
                             " batches").c_str()
                          : "");
    } else if (opt.has("resume")) {
      std::fprintf(stderr, "bitfit train: nothing to resume in %s, starting\n", out_dir.c_str());
    }
    std::fprintf(stderr, "bitfit train: %s %s, %zu trained parameters (%.4f%% of %zu), %zu train / %zu dev examples\n",
                 tt.name.c_str(), std::string(fine_tune_type_name(t.type)).c_str(), tr.trained_parameters(),
                 100.0 * double(tr.trained_parameters()) / double(model.params.layout.total_size),
                 model.params.layout.total_size, train.size(), dev.front().xs.size());

    const long steps_per_epoch = long((train.size() + std::size_t(t.batch_size) - 1) / std::size_t(t.batch_size));
    const long total = steps_per_epoch * t.epochs;
    encoder_state<float> eval_state;
    auto last_save = std::chrono::steady_clock::now();
    // What --resume needs after `epochs_done` epochs at `at_step`, and, saved within an epoch,
    // that epoch's running totals (`within_epoch`).
    auto save = [&](int epochs_done, long at_step, const step_report* within_epoch) {
      std::map<std::string, std::string> meta = {
          {"epoch", std::to_string(epochs_done)}, {"step", std::to_string(at_step)}, {"metrics", metrics.dump()}};
      if (within_epoch) meta["within_epoch"] = step_report_to_json(*within_epoch).dump();
      tr.save_state(state_file, meta);
      last_save = std::chrono::steady_clock::now();
    };
    try {
      for (int epoch = first_epoch; epoch <= t.epochs; ++epoch) {
        progress bar("epoch " + std::to_string(epoch) + "/" + std::to_string(t.epochs));
        const auto r = train_epoch(
            tr, train, epoch, step, total,
            [&](const step_report& at) {
              if (verbose && at.step % 10 == 0)
                std::fprintf(stderr, "step %ld: loss %.4f, gradient norm %.4f, lr %.3g\n", at.step, at.step_loss,
                             at.grad_norm, tr.scheduled_lr(at.step, total));
              else if (!verbose)
                bar.update(at.done, at.total, at.loss, at.tokens_per_s);
              // Mid-epoch saves (a session's end or a kill loses at most M minutes); the
              // epoch's last step is saved below, with its scores.
              if (save_minutes > 0 && at.done < at.total &&
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save).count() >= 60 * save_minutes)
                save(epoch - 1, at.step, &at);
            },
            within && within->epoch == epoch ? &*within : nullptr);
        const double secs = r.seconds;
        const auto eval_start = std::chrono::steady_clock::now();
        // The CPU beside each epoch's timings: a resumed run may finish on another machine.
        nlohmann::json e = {{"epoch", epoch}, {"step", step}, {"train_loss", r.loss}, {"seconds", secs},
                            {"tokens_per_s", r.tokens_per_s}, {"cpu", this_cpu().describe()}};
        for (const auto& d : dev) e[d.name] = tt.score(model, d.xs, eval_state);
        if (train_eval) e["train"] = tt.score(model, train_scored, eval_state);
        e["eval_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
        metrics["epoch"].push_back(e);
        const auto& first_dev = e[dev.front().name];
        std::fprintf(stderr, "epoch %d: train loss %.4f; %s: %s%s%s; %.1f s\n", epoch, double(e["train_loss"]),
                     dev.front().name.c_str(), metrics_line(first_dev).c_str(), train_eval ? "; train: " : "",
                     train_eval ? metrics_line(e["train"]).c_str() : "", secs);
        // The best epoch by the paper's metric on (the first) dev split; NaN (a constant
        // prediction's correlation) never counts as better.
        const double value = first_dev[metric].is_number() ? first_dev[metric].get<double>() : -INFINITY;
        if (!metrics.contains("best") || value > best) {
          best = value;
          metrics["best_epoch"] = epoch;
          metrics["best"] = {{"epoch", epoch}, {"metric", metric}, {"value", first_dev[metric]}, {"dev", first_dev}};
          save_patch_as(out_dir / ("best-" + patch_name));
          if (const auto extra = tt.on_best(model, eval_state, out_dir); !extra.is_null()) metrics["best"].update(extra);
        }
        if (opt.has("save-evaluator")) save_patch_as(out_dir / ("epoch-" + std::to_string(epoch) + "-" + patch_name));
        save_patch_as(out_dir / patch_name);
        metrics["finished"] = epoch == t.epochs;
        write_file_atomic(out_dir / "metrics.json", metrics.dump(2) + "\n");
        if (epoch < t.epochs) save(epoch, step, nullptr);
      }
    } catch (const training_diverged& ex) {
      metrics["error"] = ex.what();
      save_patch_as(out_dir / patch_name);
      write_file_atomic(out_dir / "metrics.json", metrics.dump(2) + "\n");
      std::fprintf(stderr, "bitfit train: %s; last good parameters written to %s\n", ex.what(), (out_dir / patch_name).c_str());
      return 1;
    }
    std::filesystem::remove(state_file);  // a finished run needs no state (a full_ft state is ~1.3 GB)
    std::fprintf(stderr, "bitfit train: wrote %s, %s and best-%s (epoch %d: %s %.4f)\n", (out_dir / "metrics.json").c_str(),
                 (out_dir / patch_name).c_str(), patch_name.c_str(), int(metrics["best_epoch"]), metric.c_str(), best);
    return 0;
  });
}

/// The model with a patch applied and the patch's metadata. A sequence patch names a GLUE task
/// (checked against its head); a token patch is a POS tagger whose labels are the tag set of
/// one CoNLL-U column.
struct patched_model {
  sequence_classifier model;
  patch_info info;
  glue_task task;  ///< sequence patches
  tag_set tags;    ///< token patches: the patch's labels in their column
  bool per_token() const { return info.per_token; }
};

/// `tagset`: the --tagset flag ("" if not given), for patches that do not record their column
/// (and, if both do, they must agree).
inline patched_model load_patched(const std::filesystem::path& model_dir, const std::string& patch, precision_request prec,
                                  const std::string& tagset = "") {
  auto loaded = load_backbone(model_dir, prec);
  patched_model out{{std::move(loaded.params), {}}, {}, {}, {}};
  out.info = apply_patch(patch, out.model.params, out.model.head, loaded.id);
  const auto& info = out.info;
  if (info.per_token) {
    check(info.task == "pos", patch + ": a token patch for task '" + info.task + "'; bitfit tags with pos patches only");
    check(!info.tagset.empty() || !tagset.empty(),
          patch + ": the patch does not record its tag column; give --tagset upos|xpos");
    const auto column = tag_column_named(info.tagset.empty() ? tagset : info.tagset);
    if (!tagset.empty() && tag_column_named(tagset) != column)
      throw error(patch + ": a " + tag_column_name(column) + " tagger, not " + tag_column_name(tag_column_named(tagset)));
    // Tag ids are indices into the sorted set (make_tag_set); a patch must list them so.
    check(std::ranges::is_sorted(info.labels) && std::ranges::adjacent_find(info.labels) == info.labels.end(),
          patch + ": its tags are not sorted and unique, as a tag set's are");
    out.tags = tag_set{column, info.labels};
    return out;
  }
  try {
    out.task = glue_task_named(info.task);
  } catch (const error& e) {
    throw error(patch + ": " + e.what());
  }
  // The output column and the metrics index the task's labels by the head's class id.
  auto outputs = [](int n, const std::vector<std::string>& labels) {
    std::string s = std::to_string(n) + (n == 1 ? " output (" : " outputs (");
    for (const auto& l : labels) s += (&l == labels.data() ? "" : ", ") + l;
    return s + (labels.empty() ? "regression)" : ")");
  };
  check(out.task.num_labels() == info.num_labels && out.task.labels == info.labels,
        patch + ": its head has " + outputs(info.num_labels, info.labels) + " but task " + out.task.name + " has " +
            outputs(out.task.num_labels(), out.task.labels));
  return out;
}

/// --max-seq-length, or its default: 128 for sentence tasks (run_glue.py's), the model's maximum
/// for tagging (every word scored).
inline int eval_max_len(const options& opt, const patched_model& pm) {
  const int max_positions = pm.model.params.config.max_position_embeddings;
  if (!opt.has("max-seq-length")) return pm.per_token() ? max_positions : std::min(128, max_positions);
  return int(opt.integer("max-seq-length", !pm.per_token() && pm.task.pair() ? 3 : 2, max_positions));
}

inline int run_evaluate(int argc, char** argv) {
  options opt("evaluate", "Re-scores a saved patch on a labelled split with the task's metrics (one JSON line per split).",
              {{"-m,--model-name,--model", "DIR|NAME", "the backbone the patch was trained on", "", false, true},
               {"patch", "FILE", "patch.safetensors, best-patch.safetensors or a checkpoint from bitfit train", "", false, true},
               {"-t,--task-name,--task", "NAME", "the task (default: the patch's; must agree with it)"},
               {"tagset", "upos|xpos", "pos: the tag column, for patches that do not record it (must agree if they do)"},
               {"data-dir", "DIR", "the task's GLUE folder, or the UD treebank folder of a pos patch",
                "$BITFIT_DATA_DIR/glue/<TASK>, $BITFIT_DATA_DIR/ud_english_ewt"},
               {"split", "dev|train|test", "which labelled split to score (MNLI dev: matched and mismatched; test: pos only, GLUE's is unlabelled)", "dev"},
               {"max-seq-length", "N", "truncate to N tokens (default: 128; pos: the model's maximum, so that every word is scored)"},
               {"-b,--batch-size", "N", "sequences per forward pass", "64"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32 or bf16", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const auto model_dir = resolve_model(opt.str("model-name"));
  const std::string patch = opt.str("patch"), split = opt.choice("split", {"dev", "train", "test"});
  const auto tok = load_tokenizer(model_dir);
  auto pm = load_patched(model_dir, patch, parse_precision(opt.str("precision"), "--precision"),
                         opt.has("tagset") ? opt.choice("tagset", {"upos", "xpos"}) : "");
  if (opt.has("task-name")) {
    const std::string named = opt.str("task-name") == "pos" ? "pos" : glue_task_named(opt.str("task-name")).name;
    check(named == pm.info.task, patch + ": a patch for task " + pm.info.task + ", not " + opt.str("task-name"));
  }
  const int max_len = eval_max_len(opt, pm), batch = int(opt.integer("batch-size", 1, 4096));
  encoder_state<float> st;
  if (pm.per_token()) {
    const auto file = ud_split_file(pos_data_dir(opt), split);
    const auto sentences = read_conllu(file);
    std::size_t cut = 0;
    const auto xs = encode_tagged(tok, sentences, pm.tags, file.string(), max_len, cut);
    nlohmann::json line = {{"task", "pos"}, {"tagset", tag_column_name(pm.tags.column)}, {"split", split},
                           {"sentences", sentences.size()}};
    line.update(pos_score(pm.model, xs, st, batch));
    line["words_cut"] = cut;
    std::printf("%s\n", line.dump().c_str());
    return 0;
  }
  check(split != "test", opt.prefix() + "--split test: GLUE test sets are unlabelled; bitfit predict writes their predictions");
  const auto data_dir = task_data_dir(opt, pm.task);
  std::vector<eval_set> sets;
  if (split == "dev") {
    sets = read_dev_sets(tok, data_dir, pm.task, max_len);
  } else {
    sets.push_back({"train", read_labelled(tok, split_file(data_dir, "train.tsv"), pm.task, max_len, "training")});
  }
  for (const auto& s : sets) {
    nlohmann::json line = {{"task", pm.task.name}, {"split", s.name}, {"examples", s.xs.size()}};
    line.update(score(pm.task, predict(pm.model, s.xs, st, batch), s.xs));
    std::printf("%s\n", line.dump().c_str());
  }
  return 0;
}

/// `bitfit predict` with a POS patch: `input` (CoNLL-U) with the patch's column filled; words
/// without a prediction (cut) get "_". Prints the accuracy if every word of the input has a
/// tag of the set in that column (a labelled file: dev, test). With `logits_file`, also the
/// head's outputs on every token, float32 (tokens, C).
inline void predict_conllu(const patched_model& pm, const bert_tokenizer& tok, const std::filesystem::path& input,
                           const std::filesystem::path& output, int max_len, int batch,
                           const std::string& logits_file = "") {
  const std::string text = detail::read_file(input);  // kept whole: the output is this text, one column filled
  const auto sentences = parse_conllu(text, input.string());
  std::size_t cut = 0, words = 0, right = 0;
  bool labelled = true;
  std::vector<float> logits;
  const auto pred = tag_sentences(pm.model, tok, sentences, max_len, batch, cut, logits_file.empty() ? nullptr : &logits);
  std::vector<std::pair<std::size_t, std::string>> line_tags;
  for (std::size_t i = 0; i < sentences.size(); ++i)
    for (std::size_t w = 0; w < sentences[i].words.size(); ++w) {
      const auto& word = sentences[i].words[w];
      const int32_t tag = pred[i][w];
      line_tags.emplace_back(word.line, tag < 0 ? "_" : pm.tags.tags[std::size_t(tag)]);
      const int gold = pm.tags.id(pm.tags.tag_of(word));
      labelled &= gold >= 0;
      ++words;
      right += std::size_t(gold >= 0 && gold == tag);
    }
  write_file_atomic(output, with_tags(text, pm.tags.column, line_tags));
  if (!logits_file.empty()) {
    const auto C = std::size_t(pm.model.head.C);
    write_npy(logits_file, logits, logits.size() / C, C);
  }
  if (labelled && words)
    std::printf("%s\n", metrics_line({{"accuracy", double(right) / double(words)}, {"words", words}}).c_str());
  if (cut) std::fprintf(stderr, "bitfit predict: note: %zu words cut at %d tokens (tagged \"_\")\n", cut, max_len);
  std::fprintf(stderr, "bitfit predict: %zu sentences, %zu words -> %s\n", sentences.size(), words, output.c_str());
}

inline int run_predict(int argc, char** argv) {
  options opt("predict", "Applies a patch to the frozen backbone and predicts the text column(s) of a GLUE-format TSV, or tags a CoNLL-U file with a POS patch.",
              {{"-m,--model-name,--model", "DIR|NAME", "the backbone the patch was trained on (HF directory or TF checkpoint, any of them)", "", false, true},
               {"patch", "FILE", "patch.safetensors or checkpoint.safetensors from bitfit train", "", false, true},
               {"input", "FILE", "GLUE-format TSV of the patch's task, or CoNLL-U for a pos patch (labelled or not)", "", false, true},
               {"output", "FILE", "TSV predictions as the GLUE server reads them (index<TAB>prediction), or the CoNLL-U input with the patch's tag column filled; written atomically", "", false, true},
               {"tagset", "upos|xpos", "pos: the tag column, for patches that do not record it (must agree if they do)"},
               {"logits", "FILE.npy", "also the head's outputs, float32 (N, C), to compare with other implementations: per "
                                       "sequence, or for a pos patch per token ([CLS] and [SEP] included, sentences in order)"},
               {"max-seq-length", "N", "truncate to N tokens (default: 128; pos: the model's maximum, so that every word is tagged)"},
               {"-b,--batch-size", "N", "sequences per forward pass", "64"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32, or in bf16 (CPUs with AVX512-BF16 or AMX; auto: bf16 where available)", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const auto model_dir = resolve_model(opt.str("model-name"));
  const std::string patch = opt.str("patch");
  const auto tok = load_tokenizer(model_dir);
  auto pm = load_patched(model_dir, patch, parse_precision(opt.str("precision"), "--precision"),
                         opt.has("tagset") ? opt.choice("tagset", {"upos", "xpos"}) : "");
  const int max_len = eval_max_len(opt, pm), batch = int(opt.integer("batch-size", 1, 4096));
  if (pm.per_token()) {
    predict_conllu(pm, tok, opt.str("input"), opt.str("output"), max_len, batch, opt.has("logits") ? opt.str("logits") : "");
    return 0;
  }
  const auto raw = read_glue_tsv(opt.str("input"), pm.task);
  const auto xs = encode_examples(tok, raw, pm.task, max_len);
  encoder_state<float> st;
  std::vector<float> logits;
  const auto pred = predict(pm.model, xs, st, batch, &logits);
  write_file_atomic(opt.str("output"), glue_submission_tsv(pm.task, raw, pred));
  if (opt.has("logits")) write_npy(opt.str("logits"), logits, xs.size(), std::size_t(pm.model.head.C));
  if (!xs.empty() && xs.front().label >= 0) std::printf("%s\n", metrics_line(score(pm.task, pred, xs)).c_str());
  std::fprintf(stderr, "bitfit predict: %zu predictions -> %s\n", xs.size(), opt.str("output").c_str());
  return 0;
}

}  // namespace bitfit::cli
