#pragma once
/// @file trainer.hpp
/// Fine-tuning a sequence classifier (BERT + task head) with every fine-tune type of the paper's
/// run_glue.py: bitfit (a set of bias terms), frozen (head only), full_ft, rand_uniform and
/// rand_row_col. Runtime choices are dispatched onto compiled mask policies where a preset
/// matches (all biases, bq+bm2, none) and onto runtime_mask otherwise; both give bit-identical
/// results (tests/test_trainer.cpp). trainer::save_state / load_state keep what a restart needs,
/// so that a resumed run ends bit-identical to an uninterrupted one.

#include <bitfit/model/encoder.hpp>
#include <bitfit/model/encoder_mixed.hpp>
#include <bitfit/data/examples.hpp>
#include <bitfit/io/safetensors.hpp>
#include <bitfit/train/adamw.hpp>
#include <bitfit/train/head.hpp>
#include <bitfit/train/mask.hpp>
#include <bitfit/train/param_subset.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bitfit {

enum class fine_tune_type { bitfit, frozen, full_ft, rand_uniform, rand_row_col };

inline fine_tune_type parse_fine_tune_type(std::string_view s) {
  if (s == "bitfit") return fine_tune_type::bitfit;
  if (s == "frozen") return fine_tune_type::frozen;
  if (s == "full_ft") return fine_tune_type::full_ft;
  if (s == "rand_uniform") return fine_tune_type::rand_uniform;
  if (s == "rand_row_col") return fine_tune_type::rand_row_col;
  throw error("unknown fine-tune type '" + std::string(s) + "' (bitfit, frozen, full_ft, rand_uniform, rand_row_col)");
}
inline std::string_view fine_tune_type_name(fine_tune_type t) {
  constexpr std::string_view n[] = {"bitfit", "frozen", "full_ft", "rand_uniform", "rand_row_col"};
  return n[int(t)];
}

/// The mask for `--bias-terms` names (query, key, ..., all); duplicates and unknown names throw.
inline runtime_mask parse_bias_terms(const std::vector<std::string>& names) {
  runtime_mask m;
  for (const auto& n : names) {
    if (n == "all") {
      m.bits |= bitfit_all::bits();
      continue;
    }
    bool found = false;
    for (term t : all_terms) {
      if (term_option_name(t) == n || term_name(t) == n) {
        check(!m.trains(t), "--bias-terms: '" + n + "' given twice");
        m.add(t), found = true;
      }
    }
    check(found, "--bias-terms: unknown term '" + n + "' (query, key, value, attention_output, attention_layernorm, "
                 "intermediate, output, output_layernorm, embeddings_layernorm, pooler, all)");
  }
  return m;
}
/// Space-separated option names of the terms in `m`.
inline std::string bias_terms_string(const runtime_mask& m) {
  std::string s;
  for (term t : all_terms)
    if (m.trains(t)) {
      if (!s.empty()) s += ' ';
      s += term_option_name(t);
    }
  return s;
}

/// The learning-rate groups of the trained spans. The bias terms group by the paper's notation
/// (§2): attention = bq, bk, bv, bm1 (the attention output dense); mlp = bm2, bm3 (intermediate
/// and output dense); layernorm = bLN1, bLN2 and the embedding LayerNorm. The pooler bias is in
/// none of them: it is not part of an encoder layer, and it is pretrained (unlike the head), so it
/// takes the backbone's learning_rate, as does full fine-tuning's single span of every parameter.
enum class lr_group : std::uint8_t { backbone, attention, mlp, layernorm, head };
inline constexpr std::array<lr_group, 5> all_lr_groups = {lr_group::backbone, lr_group::attention, lr_group::mlp,
                                                          lr_group::layernorm, lr_group::head};

/// Name of a group: "backbone", "attention", "mlp", "layernorm", "head" (the goldens' spelling).
constexpr std::string_view lr_group_name(lr_group g) {
  constexpr std::string_view n[] = {"backbone", "attention", "mlp", "layernorm", "head"};
  return n[int(g)];
}

/// The group of a bias term (see lr_group).
constexpr lr_group lr_group_of(term t) {
  switch (t) {
    case term::bq:
    case term::bk:
    case term::bv:
    case term::bm1: return lr_group::attention;
    case term::bm2:
    case term::bm3: return lr_group::mlp;
    case term::bLN1:
    case term::bLN2:
    case term::emb_bLN: return lr_group::layernorm;
    case term::pooler_b: break;
  }
  return lr_group::backbone;
}

/// Whether a head runs term `t`: a token head reads the last hidden states, so the pooler, and
/// with it `pooler_b`, never runs and is never trained (the trainer and the CLI's run record
/// both ask this).
constexpr bool head_runs(term t, bool per_token) { return !(per_token && t == term::pooler_b); }

struct train_options {
  fine_tune_type type = fine_tune_type::bitfit;
  runtime_mask terms = runtime_mask{bitfit_all::bits()};  ///< for bitfit
  /// Bias terms below this layer stay frozen, and so does the embedding LayerNorm bias when it
  /// is above 0 (the pooler bias, above every layer, still trains). Ignored by weight-training types.
  int first_trainable_layer = 0;
  /// Rate of the backbone's trained parameters, and of each bias group without a rate of its own; 0 freezes them.
  double learning_rate = 1e-3;
  /// Rate of the task head: unset, learning_rate; 0 freezes the head (training the bias terms
  /// against a fixed head), as 0 freezes any group.
  std::optional<double> head_learning_rate;
  /// Rates of the bias groups (lr_group), bitfit only: unset, a group trains at learning_rate;
  /// set, at its own rate, and 0 freezes the group (its Adam moments still advance, as torch's
  /// do for a parameter group of rate 0). 0 is a rate, not "unset": a user who writes
  /// --attention-learning-rate 0 means to freeze the attention biases.
  std::optional<double> attention_learning_rate, mlp_learning_rate, layernorm_learning_rate;
  int epochs = 3;
  int batch_size = 32;
  std::uint64_t seed = 42;
  double hidden_dropout = 0.1, attention_dropout = 0.1;
  double max_grad_norm = 1.0;
  adamw_config optimizer{};
  int warmup_steps = 0;
  bool linear_decay = false;
  bool bucket_by_length = false;  ///< batches of similar length (less work per token in attention)

  /// Whether any bias group has a rate of its own.
  bool has_group_rates() const { return attention_learning_rate || mlp_learning_rate || layernorm_learning_rate; }
  /// The rate of a group, before the schedule's factor.
  double rate(lr_group g) const {
    switch (g) {
      case lr_group::attention: return attention_learning_rate.value_or(learning_rate);
      case lr_group::mlp: return mlp_learning_rate.value_or(learning_rate);
      case lr_group::layernorm: return layernorm_learning_rate.value_or(learning_rate);
      case lr_group::head: return head_learning_rate.value_or(learning_rate);
      case lr_group::backbone: break;
    }
    return learning_rate;
  }
};

/// Throws unless every rate of `o` is finite and not negative, and the bias groups' rates come
/// with bitfit. The other types refuse them rather than ignore them: full_ft, rand_uniform and
/// rand_row_col train one span over every parameter or over the subset (one set of Adam moments,
/// one tensor in the state file), which a bias group's rate cannot split, and frozen trains no bias at all;
/// a run that accepted the rates there would record per-group rates it never used.
inline void check_rates(const train_options& o) {
  for (auto [name, rate] : {std::pair{"learning_rate", std::optional(o.learning_rate)},
                            std::pair{"head_learning_rate", o.head_learning_rate},
                            std::pair{"attention_learning_rate", o.attention_learning_rate},
                            std::pair{"mlp_learning_rate", o.mlp_learning_rate},
                            std::pair{"layernorm_learning_rate", o.layernorm_learning_rate}}) {
    char value[32];
    std::snprintf(value, sizeof value, "%g", rate.value_or(0));
    check(!rate || (std::isfinite(*rate) && *rate >= 0), std::string(name) + " must be finite and >= 0, got " + value);
  }
  const std::string type(fine_tune_type_name(o.type));
  const char* trains = o.type == fine_tune_type::frozen ? " trains the head only" : " trains one span of all parameters at learning_rate";
  check(o.type == fine_tune_type::bitfit || !o.has_group_rates(),
        type + ": the attention, mlp and layernorm learning rates apply to bitfit's bias terms only, and " + type + trains);
  if (o.type == fine_tune_type::frozen)
    check(o.rate(lr_group::head) > 0, "frozen trains the head only, and head_learning_rate is 0: nothing would train");
  else
    check(std::ranges::any_of(all_lr_groups, [&](lr_group g) { return o.rate(g) > 0; }),
          "learning_rate, head_learning_rate and the group rates are all 0: nothing would train");
}

/// Progress of an epoch after a step (train_epoch's callback), and the whole epoch (its result).
/// It is also where an interrupted epoch resumes from (train_epoch's `from`): `batches`,
/// `done`, `loss_sum`, `tokens` and `seconds` are exact running totals.
struct step_report {
  long step = 0;   ///< steps of the run so far
  int epoch = 0;
  double loss = 0;       ///< mean training loss over the epoch's examples so far
  double step_loss = 0;  ///< the last step's loss
  double grad_norm = 0;  ///< the last step's gradient norm (before clipping)
  double tokens_per_s = 0, seconds = 0;
  std::size_t done = 0, total = 0;  ///< examples of this epoch
  std::size_t batches = 0;          ///< batches of this epoch done
  double loss_sum = 0, tokens = 0;  ///< Σ step loss × batch examples, Σ tokens, this epoch
};

/// Thrown when the loss or a gradient is not finite; parameters are the last good ones.
class training_diverged : public error {
 public:
  using error::error;
};

/// BERT backbone + task head (on the pooler output, or on every token when head.per_token).
struct sequence_classifier {
  bert_params<float> params;
  task_head<float> head;
};

/// Logits of a batch in evaluation mode (no dropout): (B, C), or (N, C) for a per-token head.
/// The same computation as a task bank's (serve/task_bank.hpp): each sequence's logits do not
/// depend on the rest of the batch, so evaluation in training, `bitfit predict` and a server
/// agree bit for bit.
inline std::vector<float> predict_logits(const sequence_classifier& m, const token_batch& batch, encoder_state<float>& st) {
  const bias_segment<float> all{0, batch.size(), &m.params};
  st.run_pooler = !m.head.per_token;
  encoder_forward_mixed(st, m.params, batch, std::span<const bias_segment<float>>(&all, 1));
  const int rows = m.head.per_token ? batch.tokens() : batch.size();
  std::vector<float> logits(std::size_t(rows) * m.head.C);
  detail::linear_forward_row_stable(logits.data(), m.head.per_token ? st.last_hidden : st.pooled.data(),
                                    m.head.W.data(), m.head.b.data(), rows, m.head.H, m.head.C);
  return logits;
}

namespace detail {
/// Runs `xs` through `m` in batches of `batch_size` (evaluation mode) and calls
/// `f(batch, logits)` for each, in order: the packed batch and its predict_logits(). The one
/// batching loop of predict() and predict_tokens().
template <class F>
void for_each_batch_logits(const sequence_classifier& m, const std::vector<encoded_example>& xs, encoder_state<float>& st,
                           int batch_size, F&& f) {
  for (std::size_t first = 0; first < xs.size(); first += std::size_t(batch_size)) {
    token_batch batch;
    const std::size_t last = std::min(xs.size(), first + std::size_t(batch_size));
    for (std::size_t i = first; i < last; ++i) batch.add(xs[i].ids, xs[i].types);
    f(batch, predict_logits(m, batch, st));
  }
}
}  // namespace detail

/// Predictions for examples: class ids (as float) or regression values, in input order. `st`
/// holds the activations between calls: a caller that predicts again (a server) passes the same
/// one and allocates nothing once it has seen its largest batch. With `logits`, also the head's
/// outputs (N, C) (what `bitfit predict --logits` writes, to compare with other implementations).
inline std::vector<float> predict(const sequence_classifier& m, const std::vector<encoded_example>& xs,
                                  encoder_state<float>& st, int batch_size = 64, std::vector<float>* logits_out = nullptr) {
  check(!m.head.per_token, "predict: a per-token head predicts one class per token (predict_tokens)");
  std::vector<float> out;
  out.reserve(xs.size());
  if (logits_out) logits_out->clear();
  const int C = m.head.C;
  detail::for_each_batch_logits(m, xs, st, batch_size, [&](const token_batch& batch, const std::vector<float>& logits) {
    if (logits_out) logits_out->insert(logits_out->end(), logits.begin(), logits.end());
    for (int b = 0; b < batch.size(); ++b) {
      const float* z = logits.data() + std::size_t(b) * C;
      out.push_back(C == 1 ? z[0] : float(std::max_element(z, z + C) - z));
    }
  });
  return out;
}

/// predict() with activations of its own (freed on return).
inline std::vector<float> predict(const sequence_classifier& m, const std::vector<encoded_example>& xs, int batch_size = 64) {
  encoder_state<float> st;
  return predict(m, xs, st, batch_size);
}

/// Class ids of every token (argmax of a per-token head), per example, in input order. With
/// `logits`, also the head's outputs (N, C) for every token of every example in order, [CLS] and
/// [SEP] included (`bitfit predict --logits` for a tagger).
inline std::vector<std::vector<int>> predict_tokens(const sequence_classifier& m, const std::vector<encoded_example>& xs,
                                                    encoder_state<float>& st, int batch_size = 64,
                                                    std::vector<float>* logits_out = nullptr) {
  check(m.head.per_token, "predict_tokens: needs a per-token head");
  std::vector<std::vector<int>> out;
  out.reserve(xs.size());
  if (logits_out) logits_out->clear();
  const int C = m.head.C;
  detail::for_each_batch_logits(m, xs, st, batch_size, [&](const token_batch& batch, const std::vector<float>& logits) {
    if (logits_out) logits_out->insert(logits_out->end(), logits.begin(), logits.end());
    for (int b = 0; b < batch.size(); ++b) {
      std::vector<int> classes;
      for (int n = batch.offsets[std::size_t(b)]; n < batch.offsets[std::size_t(b) + 1]; ++n) {
        const float* z = logits.data() + std::size_t(n) * C;
        classes.push_back(int(std::max_element(z, z + C) - z));
      }
      out.push_back(std::move(classes));
    }
  });
  return out;
}

/// Fraction of the scored tokens (token_labels other than ignore_label) whose predicted class
/// equals the label: POS tagging accuracy, one token per word.
inline double token_accuracy(const std::vector<std::vector<int>>& pred, const std::vector<encoded_example>& xs) {
  std::size_t ok = 0, scored = 0;
  for (std::size_t i = 0; i < xs.size(); ++i)
    for (std::size_t t = 0; t < xs[i].token_labels.size(); ++t) {
      if (xs[i].token_labels[t] == ignore_label) continue;
      ++scored;
      ok += pred[i][t] == xs[i].token_labels[t];
    }
  return scored ? double(ok) / double(scored) : 0.0;
}

/// Fraction of examples whose predicted class equals the label. Compared as floats: a prediction
/// that is not a class id (a regression output such as 1e30, NaN) is wrong, never converted to int.
inline double accuracy(const std::vector<float>& pred, const std::vector<encoded_example>& xs) {
  std::size_t ok = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) ok += pred[i] == float(xs[i].label);
  return xs.empty() ? 0.0 : double(ok) / double(xs.size());
}

namespace detail {

/// Deterministic Fisher-Yates shuffle from the counter-based generator.
inline void shuffle(std::vector<std::size_t>& v, std::uint64_t seed) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_index(seed, i, i)]);
}

/// A trained span of parameters with its gradient, optimizer moments and learning rate.
struct trained_span {
  std::string name;                  ///< HF name of the tensor; "bert": every parameter at once;
                                     ///< "bert.subset": a random subset's entries, gathered
  std::vector<std::int64_t> shape;
  std::span<float> param, grad;
  adam_moments<float> moments;
  double lr = 0;                     ///< the span's own rate, before the schedule's factor
};

/// Format tag of trainer::save_state files.
inline constexpr const char* train_state_format = "bitfit-train-state/1";
/// Prefix of the caller's metadata keys inside a state file (the others are the trainer's).
inline constexpr std::string_view train_state_meta_prefix = "meta.";

}  // namespace detail

/// Batches of example indices for one epoch: shuffled, optionally bucketed by length.
inline std::vector<std::vector<std::size_t>> epoch_batches(const std::vector<encoded_example>& xs, int batch_size,
                                                           std::uint64_t seed, bool bucket) {
  std::vector<std::size_t> order(xs.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  detail::shuffle(order, seed);
  if (bucket) {
    // Sort within chunks of 50 batches by length, then shuffle the batches: less padding-free
    // attention work per token while the batch order stays random.
    const std::size_t chunk = std::size_t(batch_size) * 50;
    for (std::size_t s = 0; s < order.size(); s += chunk) {
      auto e = order.begin() + std::ptrdiff_t(std::min(order.size(), s + chunk));
      std::stable_sort(order.begin() + std::ptrdiff_t(s), e,
                       [&](std::size_t a, std::size_t b) { return xs[a].ids.size() < xs[b].ids.size(); });
    }
  }
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t s = 0; s < order.size(); s += std::size_t(batch_size))
    batches.emplace_back(order.begin() + std::ptrdiff_t(s),
                         order.begin() + std::ptrdiff_t(std::min(order.size(), s + std::size_t(batch_size))));
  if (bucket) {
    std::vector<std::size_t> bo(batches.size());
    std::iota(bo.begin(), bo.end(), std::size_t(0));
    detail::shuffle(bo, seed ^ 0xB0C4E7ull);
    std::vector<std::vector<std::size_t>> shuffled;
    for (auto i : bo) shuffled.push_back(std::move(batches[i]));
    batches = std::move(shuffled);
  }
  return batches;
}

/// The trainer: owns gradients and optimizer state for one model and one set of options.
/// `Mask` is the compiled policy; `mask` its value (a runtime_mask carries bits).
template <mask_policy Mask>
class trainer {
 public:
  trainer(sequence_classifier& model, const train_options& opt, const Mask& mask = {})
      : m_(model), opt_(opt), mask_(mask), grads_(model.params.config, Mask::weight_grads),
        dhead_(model.head.C, model.head.H) {
    check_rates(opt);
    check(!m_.head.per_token || m_.head.C >= 2, "trainer: a per-token head classifies: it needs at least 2 labels");
    const auto& layout = m_.params.layout;
    if constexpr (Mask::weight_grads) {
      check(m_.params.weight_precision() == precision::fp32,
            std::string(fine_tune_type_name(opt.type)) + " trains weight matrices, which a bf16 backbone stores "
            "frozen: load it in fp32");
      if constexpr (is_weight_subset<Mask>) {
        check(opt.type == fine_tune_type::rand_uniform || opt.type == fine_tune_type::rand_row_col,
              "trainer: a weight-subset policy needs rand_uniform or rand_row_col");
        keep_ = opt.type == fine_tune_type::rand_uniform ? random_uniform_subset(layout, layout.bias_size, opt.seed)
                                                         : random_row_col_subset(layout, layout.bias_size, opt.seed);
        mask_.keep = keep_.data(), mask_.grad_base = grads_.data.data();
        // The subset's entries (~0.1%) gathered into a span of their own: clipping and AdamW read
        // them alone, and the moments take 8 bytes per trained entry, not per parameter (BERT-base:
        // 0.8 MB, not 872 MB; the training state likewise).
        for (std::size_t i = 0; i < keep_.size(); ++i)
          if (keep_[i]) kept_.push_back(i);
        subset_param_.resize(kept_.size()), subset_grad_.assign(kept_.size(), 0.0f);
        for (std::size_t j = 0; j < kept_.size(); ++j) subset_param_[j] = m_.params.data[kept_[j]];
        add_span("bert.subset", {std::int64_t(kept_.size())}, subset_param_, subset_grad_, opt.rate(lr_group::backbone));
      } else {
        check(opt.type == fine_tune_type::full_ft, "trainer: full_mask trains every parameter (fine-tune type full_ft; "
                                                   "rand_uniform and rand_row_col train under weight_subset_mask)");
        add_span("bert", {std::int64_t(layout.total_size)}, m_.params.data, grads_.data, opt.rate(lr_group::backbone));
      }
    } else {
      const int L = m_.params.config.num_hidden_layers;
      for (const auto& e : layout.entries) {
        if (!e.is_bias || !mask_.trains(e.bias_term)) continue;
        if (!head_runs(e.bias_term, m_.head.per_token)) continue;
        // Where the term sits in the stack: the embedding LayerNorm below layer 0, the pooler above layer L-1.
        const int level = e.bias_term == term::emb_bLN ? -1 : e.bias_term == term::pooler_b ? L : e.layer;
        if (opt.first_trainable_layer > 0 && level < opt.first_trainable_layer) continue;
        trained_.push_back(&e);
        add_span(e.name, e.shape, m_.params.tensor(e), grads_.tensor(e), opt.rate(lr_group_of(e.bias_term)));
      }
    }
    add_span("classifier.weight", {m_.head.C, m_.head.H}, m_.head.W, dhead_.W, opt.rate(lr_group::head));
    add_span("classifier.bias", {m_.head.C}, m_.head.b, dhead_.b, opt.rate(lr_group::head));
  }
  // The spans and a weight_subset_mask point into this object's own buffers: no copies (a move
  // keeps the buffers where they are).
  trainer(const trainer&) = delete;
  trainer& operator=(const trainer&) = delete;
  trainer(trainer&&) noexcept = default;

  /// Parameters updated by this trainer (a bias-only trainer: the trained bias entries).
  std::size_t trained_parameters() const {
    std::size_t n = 0;
    for (const auto& s : spans_) n += s.param.size();
    return n;
  }
  /// The bias entries trained (empty for weight-training types: they train every tensor).
  const std::vector<const param_entry*>& trained_entries() const { return trained_; }
  const encoder_state<float>& state() const { return st_; }

  /// One optimisation step on a batch. Returns the loss. Throws training_diverged (before any
  /// update) if the loss or the gradient norm is not finite.
  double step(const std::vector<encoded_example>& xs, const std::vector<std::size_t>& idx, long t, long total_steps) {
    const bool per_token = m_.head.per_token;
    token_batch batch;
    std::vector<int> labels;  // one per sequence, or one per token for a per-token head
    std::vector<float> scores;
    for (auto i : idx) {
      batch.add(xs[i].ids, xs[i].types);
      if (per_token) {
        check(xs[i].token_labels.size() == xs[i].ids.size(), "trainer: a token task's example needs one label per token");
        labels.insert(labels.end(), xs[i].token_labels.begin(), xs[i].token_labels.end());
      } else {
        labels.push_back(xs[i].label);
      }
      scores.push_back(xs[i].score);
    }
    // The head's rows: each sequence's pooler output, or every token's last hidden state.
    const int rows = per_token ? batch.tokens() : batch.size(), H = m_.head.H, C = m_.head.C;
    dropout_config drop{opt_.hidden_dropout, opt_.attention_dropout, detail::derive_seed(opt_.seed, std::uint64_t(t))};
    st_.run_pooler = !per_token;
    encoder_forward(st_, m_.params, batch, mask_, drop, opt_.first_trainable_layer);
    x_.resize(std::size_t(rows) * H), logits_.resize(std::size_t(rows) * C), dlogits_.resize(logits_.size());
    dx_.resize(std::size_t(rows) * H);
    head_forward(logits_.data(), x_.data(), per_token ? st_.last_hidden : st_.pooled.data(), m_.head, rows, drop.head());
    const double loss = C == 1 ? mean_squared_error(dlogits_.data(), logits_.data(), scores)
                               : cross_entropy(dlogits_.data(), logits_.data(), labels, C);
    head_backward(dx_.data(), dhead_, dlogits_.data(), x_.data(), m_.head, rows, drop.head());
    if (per_token)
      encoder_backward(grads_, st_, m_.params, batch, dx_.data(), mask_, drop);
    else
      encoder_backward_pooled(grads_, st_, m_.params, batch, dx_.data(), mask_, drop);
    for (std::size_t j = 0; j < kept_.size(); ++j) subset_grad_[j] = grads_.data[kept_[j]];
    std::vector<std::span<float>> gs;
    for (auto& s : spans_) gs.push_back(s.grad);
    last_grad_norm_ = clip_global_norm<float>(gs, opt_.max_grad_norm);
    if (!std::isfinite(loss) || !std::isfinite(last_grad_norm_))
      throw training_diverged("training diverged at step " + std::to_string(t) + ": loss " + std::to_string(loss) +
                              ", gradient norm " + std::to_string(last_grad_norm_));
    const double f = schedule_factor(t, total_steps);
    for (auto& s : spans_)
      adamw_update<float>(s.param, s.grad, s.moments, opt_.optimizer, s.lr * f, t);
    if constexpr (is_weight_subset<Mask>) {
      scatter_subset();
      // The backward wrote every gradient below the layers' matrices densely, and theirs only at
      // the subset's entries.
      const std::size_t dense = m_.params.layout.gemm_offset;
      std::fill(grads_.data.begin(), grads_.data.begin() + std::ptrdiff_t(dense), 0.0f);
      for (std::size_t i : kept_)
        if (i >= dense) grads_.data[i] = 0.0f;
    } else {
      std::fill(grads_.data.begin(), grads_.data.end(), 0.0f);
    }
    std::fill(dhead_.W.begin(), dhead_.W.end(), 0.0f);
    std::fill(dhead_.b.begin(), dhead_.b.end(), 0.0f);
    tokens_ = batch.tokens();
    return loss;
  }

  double last_grad_norm() const { return last_grad_norm_; }
  int last_tokens() const { return tokens_; }
  const train_options& options() const { return opt_; }

  /// The schedule's factor at step t (1-based), applied to every span's own rate: 1, or linear
  /// warmup then linear decay to 0.
  double schedule_factor(long t, long total) const {
    double f = 1.0;
    if (opt_.warmup_steps > 0 && t <= opt_.warmup_steps) f = double(t) / opt_.warmup_steps;
    else if (opt_.linear_decay && total > opt_.warmup_steps)
      f = std::max(0.0, double(total - t) / double(total - opt_.warmup_steps));
    return f;
  }
  /// Learning rate of the backbone's trained parameters at step t (1-based): learning_rate times
  /// schedule_factor(); every other group's (train_options::rate()) is its own rate times the same factor.
  double scheduled_lr(long t, long total) const { return opt_.learning_rate * schedule_factor(t, total); }

  /// Writes, atomically, one safetensors file with what resuming needs besides the step count:
  /// for every trained span (each trained bias tensor by HF name, "bert" for all parameters of
  /// full_ft, "bert.subset" for the entries of rand_uniform's or rand_row_col's subset, in order,
  /// "classifier.weight", "classifier.bias") the tensors "param/<name>",
  /// "adam_m/<name>" and "adam_v/<name>" (F32). Its metadata: the trainer's configuration
  /// ("format", "fine_tune_type", "bias_terms", "first_trainable_layer", "subset", "head",
  /// "spans"), "data_sha256" over all tensor data, and each `meta` entry under "meta.<key>". The
  /// RNG needs no state: dropout derives from (seed, step) and shuffles from (seed, epoch), so the
  /// caller records its step and epoch in `meta` and passes the next step to step(). The frozen
  /// backbone is not in the file: a bias-only caller should record backbone_id() in `meta` and
  /// compare it on resume. Throws bitfit::error naming `file`.
  void save_state(const std::filesystem::path& file, const std::map<std::string, std::string>& meta) const {
    std::vector<tensor_to_write> ts;
    for (const auto& s : spans_) {
      ts.push_back({"param/" + s.name, s.shape, s.param});
      ts.push_back({"adam_m/" + s.name, s.shape, s.moments.m});
      ts.push_back({"adam_v/" + s.name, s.shape, s.moments.v});
    }
    auto all = state_tag();
    std::vector<std::span<const float>> data;
    for (const auto& t : ts) data.push_back(t.data);
    all["data_sha256"] = state_digest(data);
    for (const auto& [key, value] : meta) {
      check(!key.empty(), file.string() + ": training state metadata with an empty key");
      all[std::string(detail::train_state_meta_prefix) + key] = value;
    }
    write_safetensors(file, ts, all);
  }

  /// Restores a save_state() file into the trained parameters (model and head) and the Adam
  /// moments, and returns the caller's `meta`. Everything is checked first (format, the trainer's
  /// configuration, every tensor's presence, dtype and shape, no extra tensors, the data digest);
  /// only then is anything written, so on any error (bitfit::error naming `file`) the model and
  /// optimizer are untouched.
  std::map<std::string, std::string> load_state(const std::filesystem::path& file) {
    const safetensors_file f(file);
    const auto& md = f.metadata();
    const std::string where = file.string() + ": ";
    auto get = [&](const std::string& key) -> std::string {
      check(md.contains(key) && md[key].is_string(), where + "training state metadata lacks '" + key + "'");
      return md[key].get<std::string>();
    };
    const std::string format = md.contains("format") ? md["format"].get<std::string>() : std::string();
    check(format == detail::train_state_format, where + "not a bitfit training state (format '" +
                                                    detail::capped(format) + "', expected '" +
                                                    detail::train_state_format + "')");
    for (const auto& [key, expected] : state_tag()) {
      const std::string found = get(key);
      check(found == expected, where + "training state of another configuration: its " + key + " is '" +
                                   detail::capped(found) + "' but this run's is '" + detail::capped(expected) +
                                   "'; resume with the options it was saved with");
    }
    std::vector<std::array<std::span<const float>, 3>> src;
    std::vector<std::span<const float>> data;
    for (const auto& s : spans_) {
      std::array<std::span<const float>, 3> parts;
      std::size_t k = 0;
      for (const char* prefix : {"param/", "adam_m/", "adam_v/"}) {
        const std::string name = prefix + s.name;
        // contains() would also accept "bert." + name: the name must be exact.
        check(f.contains(name) && f.info(name).name == name, where + "training state lacks the tensor '" + name + "'");
        const auto& info = f.info(name);
        check(info.type == dtype::f32, where + "tensor '" + name + "' has dtype " + std::string(dtype_name(info.type)) +
                                           ", not F32");
        parts[k++] = f.f32(name, std::span<const std::int64_t>(s.shape));
        data.push_back(parts[k - 1]);
      }
      src.push_back(parts);
    }
    check(f.names().size() == 3 * spans_.size(),
          where + "training state holds " + std::to_string(f.names().size()) + " tensors, this run expects " +
              std::to_string(3 * spans_.size()));
    check(get("data_sha256") == state_digest(data),
          where + "training state is corrupt (its data does not match its data_sha256)");
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      auto& s = spans_[i];
      std::copy(src[i][0].begin(), src[i][0].end(), s.param.begin());
      std::copy(src[i][1].begin(), src[i][1].end(), s.moments.m.begin());
      std::copy(src[i][2].begin(), src[i][2].end(), s.moments.v.begin());
    }
    if constexpr (is_weight_subset<Mask>) scatter_subset();
    std::map<std::string, std::string> meta;
    for (auto it = md.begin(); it != md.end(); ++it)  // every value is a string (safetensors_file checks)
      if (it.key().starts_with(detail::train_state_meta_prefix))
        meta[it.key().substr(detail::train_state_meta_prefix.size())] = it.value().template get<std::string>();
    return meta;
  }

 private:
  void add_span(std::string name, std::vector<std::int64_t> shape, std::span<float> param, std::span<float> grad,
                double lr) {
    adam_moments<float> moments(param.size());
    spans_.push_back({std::move(name), std::move(shape), param, grad, std::move(moments), lr});
  }

  /// A random subset's updated entries back into the model's parameters.
  void scatter_subset() {
    for (std::size_t j = 0; j < kept_.size(); ++j) m_.params.data[kept_[j]] = subset_param_[j];
  }

  /// What a state file must agree on with this trainer (see save_state()).
  std::map<std::string, std::string> state_tag() const {
    runtime_mask terms;
    for (term t : all_terms)
      if (mask_.trains(t)) terms.add(t);
    std::string subset;
    if (!kept_.empty()) subset = "seed " + std::to_string(opt_.seed) + ", " + std::to_string(kept_.size()) + " entries";
    nlohmann::json spans = nlohmann::json::array();
    for (const auto& s : spans_) spans.push_back({s.name, s.param.size()});
    return {{"format", detail::train_state_format},
            {"fine_tune_type", std::string(fine_tune_type_name(opt_.type))},
            {"bias_terms", Mask::weight_grads ? std::string("(every parameter)") : bias_terms_string(terms)},
            {"first_trainable_layer", std::to_string(Mask::weight_grads ? 0 : opt_.first_trainable_layer)},
            {"subset", subset},
            {"head", std::to_string(m_.head.C) + "x" + std::to_string(m_.head.H)},
            {"spans", spans.dump()}};
  }

  /// SHA-256 of the values of `data`, in order (their bytes in memory, the same on save and load).
  static std::string state_digest(const std::vector<std::span<const float>>& data) {
    detail::sha256 h;
    for (auto d : data) h.update(d.data(), d.size_bytes());
    return h.hex();
  }

  sequence_classifier& m_;
  train_options opt_;
  Mask mask_;
  bert_params<float> grads_;
  task_head<float> dhead_;
  encoder_state<float> st_;
  std::vector<unsigned char> keep_;    // a random subset's marks over the flat buffer (the backward's)
  std::vector<std::size_t> kept_;      // their indices, ascending
  std::vector<float> subset_param_, subset_grad_;  // (kept) the subset's values and gradients, gathered
  std::vector<detail::trained_span> spans_;
  std::vector<const param_entry*> trained_;
  std::vector<float> x_, logits_, dlogits_, dx_;  // the head: input, outputs, their gradient, its input's
  double last_grad_norm_ = 0;
  int tokens_ = 0;
};

/// Calls `f(trainer<Mask>&)` with the compiled policy for `opt`: a preset when the runtime
/// choice matches one, runtime_mask otherwise.
template <class F>
decltype(auto) with_trainer(sequence_classifier& model, const train_options& opt, F&& f) {
  switch (opt.type) {
    case fine_tune_type::full_ft: {
      trainer<full_mask> t(model, opt);
      return f(t);
    }
    case fine_tune_type::rand_uniform:
    case fine_tune_type::rand_row_col: {
      trainer<weight_subset_mask> t(model, opt);
      return f(t);
    }
    case fine_tune_type::frozen: {
      trainer<frozen_mask> t(model, opt);
      return f(t);
    }
    case fine_tune_type::bitfit:
      break;
  }
  if (opt.terms.bits == bitfit_all::bits()) {
    trainer<bitfit_all> t(model, opt);
    return f(t);
  }
  if (opt.terms.bits == bitfit_bq_bm2::bits()) {
    trainer<bitfit_bq_bm2> t(model, opt);
    return f(t);
  }
  if (opt.terms.bits == 0) {
    trainer<frozen_mask> t(model, opt);
    return f(t);
  }
  trainer<runtime_mask> t(model, opt, opt.terms);
  return f(t);
}

/// One epoch of training: `xs` in shuffled batches (epoch_batches, from the options' seed and
/// `epoch`, bucketed if asked), a step each, `on_step(report)` after every step. `step` counts the
/// steps of the run (the schedule's t; updated) and `total` is the run's number of steps. The
/// same loop as `bitfit train`'s, so a run through the library shuffles and steps identically.
/// With `from` (a report of this epoch, saved beside trainer::save_state after its step), the
/// epoch continues after that report's batches, its totals included: an epoch interrupted there
/// and resumed ends bit-identical to an uninterrupted one (the order of the batches and every
/// step's dropout derive from the seed, the epoch and the step).
template <class Trainer, class F>
step_report train_epoch(Trainer& tr, const std::vector<encoded_example>& xs, int epoch, long& step, long total, F&& on_step,
                        const step_report* from = nullptr) {
  const auto& opt = tr.options();
  const auto batches = epoch_batches(xs, opt.batch_size, detail::derive_seed(opt.seed, 0xE90C + std::uint64_t(epoch)),
                                     opt.bucket_by_length);
  step_report r;
  if (from) {
    check(from->epoch == epoch && from->total == xs.size() && from->batches <= batches.size(),
          "train_epoch: a report of epoch " + std::to_string(from->epoch) + " over " + std::to_string(from->total) +
              " examples (" + std::to_string(from->batches) + " batches) cannot resume epoch " + std::to_string(epoch) +
              " over " + std::to_string(xs.size()));
    r = *from;
  }
  r.epoch = epoch, r.total = xs.size();
  const auto start = std::chrono::steady_clock::now();
  const double seconds_before = r.seconds;
  for (std::size_t i = r.batches; i < batches.size(); ++i) {
    const auto& b = batches[i];
    r.step_loss = tr.step(xs, b, ++step, total);
    r.loss_sum += r.step_loss * double(b.size());
    r.done += b.size();
    r.tokens += tr.last_tokens();
    r.batches = i + 1;
    r.step = step, r.loss = r.loss_sum / double(r.done), r.grad_norm = tr.last_grad_norm();
    r.seconds = seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.tokens_per_s = r.tokens / std::max(r.seconds, 1e-9);
    on_step(std::as_const(r));
  }
  return r;
}

/// train_epoch without a callback.
template <class Trainer>
step_report train_epoch(Trainer& tr, const std::vector<encoded_example>& xs, int epoch, long& step, long total) {
  return train_epoch(tr, xs, epoch, step, total, [](const step_report&) {});
}

}  // namespace bitfit
