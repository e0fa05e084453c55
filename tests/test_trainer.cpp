// Training parity with PyTorch autograd on the real checkpoint (HF BertForSequenceClassification,
// fixed head, dropout off), determinism, and compiled versus runtime mask dispatch.
// Goldens: tests/data/grad, made by tools/goldens/make_grad_goldens.py (float64 reference).
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/train/patch.hpp>
#include <bitfit/train/trainer.hpp>

#include <doctest/doctest.h>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace {

std::filesystem::path gdir() { return bitfit::test::golden_dir() / "grad"; }
template <class V>
xt::xarray<V> npy(const std::filesystem::path& p) { return xt::load_npy<V>(p.string()); }

/// A golden batch: the packed sequences, and one label per sequence (sequence task) or per real
/// token (token task, -100 where not scored), with HF's loss and logits (padded (B, T, C) for
/// tokens, gathered here to the packed rows).
struct golden_batch {
  bitfit::token_batch batch;
  std::vector<int> labels;
  bool token = false;
  double loss = 0;
  std::vector<double> logits;
};

golden_batch load_batch(const std::filesystem::path& d) {
  auto ids = npy<int>(d / "input_ids.npy"), types = npy<int>(d / "token_type_ids.npy"), mask = npy<int>(d / "attention_mask.npy");
  auto labels = npy<int>(d / "labels.npy");
  auto logits = npy<double>(d / "logits.npy");
  golden_batch g;
  g.token = labels.dimension() == 2;
  for (std::size_t b = 0; b < ids.shape(0); ++b) {
    std::vector<std::int32_t> i, t;
    for (std::size_t k = 0; k < ids.shape(1) && mask(b, k); ++k) {
      i.push_back(ids(b, k)), t.push_back(types(b, k));
      if (g.token) {
        g.labels.push_back(labels(b, k));
        for (std::size_t c = 0; c < logits.shape(2); ++c) g.logits.push_back(logits(b, k, c));
      }
    }
    g.batch.add(i, t);
    if (!g.token) {
      g.labels.push_back(labels(b));
      for (std::size_t c = 0; c < logits.shape(1); ++c) g.logits.push_back(logits(b, c));
    }
  }
  g.loss = npy<double>(d / "loss.npy")();
  return g;
}

/// The classifier of a golden set: float32 head_weight.npy (C, H) and head_bias.npy (C).
template <class T>
bitfit::task_head<T> golden_head(const std::filesystem::path& dir) {
  auto W = npy<float>(dir / "head_weight.npy");
  auto b = npy<float>(dir / "head_bias.npy");
  bitfit::task_head<T> h(int(W.shape(0)), int(W.shape(1)));
  for (std::size_t i = 0; i < h.W.size(); ++i) h.W[i] = T(W.data()[i]);
  for (std::size_t i = 0; i < h.b.size(); ++i) h.b[i] = T(b.data()[i]);
  return h;
}

/// The loss and gradients of one batch, computed by our ops in precision T: the head on the
/// pooler output (sequence task) or on every token's last hidden state (token task).
template <class T, class Mask>
struct grads_of {
  double loss = 0;
  std::vector<T> logits;
  bitfit::bert_params<T> g;
  bitfit::task_head<T> dhead;
  grads_of(const bitfit::bert_params<T>& p, const bitfit::task_head<T>& head, const golden_batch& gb)
      : g(p.config, Mask::weight_grads), dhead(head.C, head.H) {
    const int rows = gb.token ? gb.batch.tokens() : gb.batch.size(), H = head.H, C = head.C;
    bitfit::encoder_state<T> st;
    st.run_pooler = !gb.token;
    bitfit::encoder_forward(st, p, gb.batch, Mask{});
    std::vector<T> x(std::size_t(rows) * H), dlogits(std::size_t(rows) * C), dx(std::size_t(rows) * H);
    logits.resize(std::size_t(rows) * C);
    bitfit::head_forward(logits.data(), x.data(), gb.token ? st.last_hidden : st.pooled.data(), head, rows);
    loss = bitfit::cross_entropy(dlogits.data(), logits.data(), gb.labels, C);
    bitfit::head_backward(dx.data(), dhead, dlogits.data(), x.data(), head, rows);
    if (gb.token)
      bitfit::encoder_backward(g, st, p, gb.batch, dx.data(), Mask{});
    else
      bitfit::encoder_backward_pooled(g, st, p, gb.batch, dx.data(), Mask{});
  }
};

/// Largest violation of |a - b| <= rel·|b| + abs over a tensor, as a multiple of that bound.
template <class A>
double worst_ratio(const A* ours, const double* ref, std::size_t n, double rel, double abs) {
  double w = 0;
  for (std::size_t i = 0; i < n; ++i) w = std::max(w, std::fabs(double(ours[i]) - ref[i]) / (rel * std::fabs(ref[i]) + abs));
  return w;
}

/// Loss, logits, every bias gradient and the head's against the golden set whose head is in
/// `head_dir` and whose batch is in `batch_dir`.
template <class T>
void check_bias_parity(const std::filesystem::path& head_dir, const std::filesystem::path& batch_dir, double rel, double abs) {
  const auto params = bitfit::load_bert_params<T>(bitfit::test::model_dir());
  const int L = params.config.num_hidden_layers, H = params.config.hidden_size;
  const auto head = golden_head<T>(head_dir);
  const auto gb = load_batch(batch_dir);
  const std::string batch_name = batch_dir.filename().string();
  grads_of<T, bitfit::bitfit_all> r(params, head, gb);
  CHECK(r.loss == doctest::Approx(gb.loss).epsilon(1e-6));
  REQUIRE(r.logits.size() == gb.logits.size());
  CHECK(worst_ratio(r.logits.data(), gb.logits.data(), r.logits.size(), rel, abs) <= 1.0);
  for (bitfit::term t : bitfit::all_terms) {
    if (gb.token && t == bitfit::term::pooler_b) {  // BertForTokenClassification has no pooler
      CHECK(std::all_of(r.g.bias(t, 0), r.g.bias(t, 0) + H, [](T v) { return v == T(0); }));
      continue;
    }
    const auto ref = npy<double>(batch_dir / (std::string(bitfit::term_name(t)) + ".npy"));
    std::vector<T> ours;
    if (t == bitfit::term::emb_bLN || t == bitfit::term::pooler_b) {
      const T* v = r.g.bias(t, 0);
      ours.assign(v, v + H);
    } else {
      const int dim = t == bitfit::term::bm2 ? params.config.intermediate_size : H;
      for (int l = 0; l < L; ++l) ours.insert(ours.end(), r.g.bias(t, l), r.g.bias(t, l) + dim);
    }
    REQUIRE(ours.size() == ref.size());
    // bk's true gradient is 0 (softmax shift invariance): only an absolute bound makes sense.
    const double w = t == bitfit::term::bk ? worst_ratio(ours.data(), ref.data(), ours.size(), 0.0, 1e-8)
                                            : worst_ratio(ours.data(), ref.data(), ours.size(), rel, abs);
    std::printf("%s %-8s worst error / tolerance %.3g\n", batch_name.c_str(), std::string(bitfit::term_name(t)).c_str(), w);
    CHECK_MESSAGE(w <= 1.0, batch_name << " " << bitfit::term_name(t));
  }
  const auto hW = npy<double>(batch_dir / "head_W.npy"), hb = npy<double>(batch_dir / "head_b.npy");
  CHECK(worst_ratio(r.dhead.W.data(), hW.data(), hW.size(), rel, abs) <= 1.0);
  CHECK(worst_ratio(r.dhead.b.data(), hb.data(), hb.size(), rel, abs) <= 1.0);
}

}  // namespace

TEST_CASE("loss and every bias and head gradient match PyTorch autograd (float32: 1e-4 rel or 1e-6 abs)") {
  for (const char* b : {"single", "pair"}) check_bias_parity<float>(gdir(), gdir() / b, 1e-4, 1e-6);
}

TEST_CASE("the double instantiation matches PyTorch's float64 autograd to 1e-9 relative") {
  for (const char* b : {"single", "pair"}) check_bias_parity<double>(gdir(), gdir() / b, 1e-9, 1e-13);
}

// Token classification (issue #11): HF BertForTokenClassification on 4 UD-EWT sentences, UPOS
// labels on each word's first sub-token (tools/goldens/make_token_grad_goldens.py).
TEST_CASE("token head: loss, logits, every bias and head gradient match BertForTokenClassification (float32)") {
  const auto dir = bitfit::test::golden_dir() / "token_grad";
  check_bias_parity<float>(dir, dir, 1e-4, 1e-6);
}

TEST_CASE("token head: the double instantiation matches BertForTokenClassification in float64 to 1e-9 relative") {
  const auto dir = bitfit::test::golden_dir() / "token_grad";
  check_bias_parity<double>(dir, dir, 1e-9, 1e-13);
}

TEST_CASE("full_ft weight gradients match PyTorch autograd on sampled entries and in norm") {
  const auto params = bitfit::load_bert_params<float>(bitfit::test::model_dir());
  const auto head = golden_head<float>(gdir());
  for (const char* name : {"single", "pair"}) {
    const auto gb = load_batch(gdir() / name);
    grads_of<float, bitfit::full_mask> r(params, head, gb);
    const auto samples = npy<double>(gdir() / name / "weight_grad_samples.npy");
    std::ifstream idx(gdir() / name / "weight_grad_index.tsv");
    std::string line;
    std::getline(idx, line);  // header
    std::size_t k = 0;
    double worst = 0;
    while (std::getline(idx, line)) {
      std::istringstream in(line);
      std::string tensor;
      std::size_t flat = 0;
      in >> tensor >> flat;
      const float ours = r.g.tensor(r.g.layout.find(tensor))[flat];
      worst = std::max(worst, std::fabs(double(ours) - samples(k)) / (1e-4 * std::fabs(samples(k)) + 1e-6));
      ++k;
    }
    REQUIRE(k == samples.size());
    std::ifstream norms(gdir() / name / "weight_grad_norms.tsv");
    std::getline(norms, line);
    std::size_t tensors = 0;
    while (std::getline(norms, line)) {
      std::istringstream in(line);
      std::string tensor;
      double ref = 0;
      in >> tensor >> ref;
      double sq = 0;
      for (float v : r.g.tensor(r.g.layout.find(tensor))) sq += double(v) * v;
      CHECK_MESSAGE(std::sqrt(sq) == doctest::Approx(ref).epsilon(1e-4), tensor);
      ++tensors;
    }
    std::printf("%s: %zu sampled weight-gradient entries, worst error / tolerance %.3g; %zu tensor norms\n", name, k, worst, tensors);
    CHECK(worst <= 1.0);
    const std::size_t bias_tensors = 8 * std::size_t(params.config.num_hidden_layers) + 2;
    CHECK(tensors == r.g.layout.entries.size() - bias_tensors);  // every weight tensor
  }
}

// ---- The training loop on a tiny random model (L=2, H=8, A=2, I=16): fast, exact contracts. ----
namespace {

bitfit::sequence_classifier tiny_model(int layers = 2) {
  auto config = bitfit::test::tiny_config();
  config.num_hidden_layers = layers;
  bitfit::sequence_classifier m{bitfit::bert_params<float>(config, true), bitfit::task_head<float>::init(2, 8, 11)};
  for (std::size_t i = 0; i < m.params.data.size(); ++i)
    m.params.data[i] = float(double(bitfit::detail::mix64(i) >> 11) * 0x1.0p-53 - 0.5);
  return m;
}

/// Parameters and head, in one vector.
std::vector<float> snapshot(const bitfit::sequence_classifier& m) {
  std::vector<float> all(m.params.data.begin(), m.params.data.end());
  all.insert(all.end(), m.head.W.begin(), m.head.W.end());
  all.insert(all.end(), m.head.b.begin(), m.head.b.end());
  return all;
}

/// Bit for bit (== would take -0.0 for 0.0 and refuse NaN == NaN).
bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct tiny_task {
  bitfit::sequence_classifier model;
  std::vector<bitfit::encoded_example> xs;

  explicit tiny_task(int layers = 2) : model(tiny_model(layers)) {
    for (int n = 0; n < 12; ++n) {  // sequences of 2..7 tokens, label = parity of the first id
      bitfit::encoded_example e;
      for (int t = 0; t < 2 + n % 6; ++t) e.ids.push_back(std::int32_t((7 * n + 3 * t) % 50)), e.types.push_back(t > 2);
      e.label = e.ids[0] % 2;
      xs.push_back(std::move(e));
    }
  }

  /// Steps `first`..`last` (1-based) of a `total`-step run with `tr`, on batches of 4.
  template <class Mask>
  void run(bitfit::trainer<Mask>& tr, const bitfit::train_options& opt, int first, int last, int total) {
    for (int s = first; s <= last; ++s) {
      const auto batches = bitfit::epoch_batches(xs, 4, opt.seed + std::uint64_t(s), false);
      tr.step(xs, batches[0], s, total);
    }
  }

  /// Parameters and head after `steps` steps of batches of 4 under `opt`, with policy `Mask`.
  template <class Mask>
  std::vector<float> train(const bitfit::train_options& opt, int steps, const Mask& mask = {}) {
    bitfit::trainer<Mask> tr(model, opt, mask);
    run(tr, opt, 1, steps, steps);
    return snapshot(model);
  }
};

bitfit::train_options tiny_options(bitfit::fine_tune_type type = bitfit::fine_tune_type::bitfit) {
  bitfit::train_options o;
  o.type = type;
  o.learning_rate = 1e-2;
  o.hidden_dropout = o.attention_dropout = 0.1;
  return o;
}

}  // namespace

TEST_CASE("trainer: the same seed gives bit-identical parameters, another seed does not") {
  auto opt = tiny_options();
  const auto a = tiny_task().train<bitfit::bitfit_all>(opt, 5);
  CHECK(tiny_task().train<bitfit::bitfit_all>(opt, 5) == a);
  auto full = tiny_options(bitfit::fine_tune_type::full_ft);
  const auto f = tiny_task().train<bitfit::full_mask>(full, 5);
  CHECK(tiny_task().train<bitfit::full_mask>(full, 5) == f);
  CHECK(f != a);
  opt.seed = full.seed = 43;
  CHECK(tiny_task().train<bitfit::bitfit_all>(opt, 5) != a);
  CHECK(tiny_task().train<bitfit::full_mask>(full, 5) != f);
}

TEST_CASE("trainer: compiled presets and the runtime mask train bit-identically") {
  const auto opt = tiny_options();
  CHECK(tiny_task().train<bitfit::bitfit_all>(opt, 4) ==
        tiny_task().train<bitfit::runtime_mask>(opt, 4, bitfit::runtime_mask{bitfit::bitfit_all::bits()}));
  CHECK(tiny_task().train<bitfit::bitfit_bq_bm2>(opt, 4) ==
        tiny_task().train<bitfit::runtime_mask>(opt, 4, bitfit::runtime_mask{bitfit::bitfit_bq_bm2::bits()}));
  CHECK(tiny_task().train<bitfit::frozen_mask>(opt, 4) == tiny_task().train<bitfit::runtime_mask>(opt, 4, {}));
}

TEST_CASE("trainer: bias-only training changes only the masked bias terms and the head") {
  tiny_task t;
  const auto before = t.model.params.data;
  const auto head_before = t.model.head.W;
  t.train<bitfit::bitfit_bq_bm2>(tiny_options(), 3);
  std::size_t changed = 0;
  for (const auto& e : t.model.params.layout.entries) {
    const bool trained = e.is_bias && e.layer >= 0 && (e.bias_term == bitfit::term::bq || e.bias_term == bitfit::term::bm2);
    for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) {
      if (!trained) CHECK(t.model.params.data[i] == before[i]);
      changed += t.model.params.data[i] != before[i];
    }
  }
  CHECK(changed == std::size_t(2 * (8 + 16)));
  CHECK(t.model.head.W != head_before);
}

TEST_CASE("trainer: a per-token head learns token labels; the pooler is untouched, only masked terms change") {
  // 12 sequences; every token but [CLS] (position 0) labelled id mod 3: a function of the token
  // that the head on the last hidden state can learn, and that the pooler could not supply.
  tiny_task t;
  t.model.head = bitfit::task_head<float>::init(3, 8, 5);
  t.model.head.per_token = true;
  for (auto& e : t.xs) {
    e.token_labels.assign(e.ids.size(), bitfit::ignore_label);
    for (std::size_t k = 1; k < e.ids.size(); ++k) e.token_labels[k] = e.ids[k] % 3;
  }
  bitfit::encoder_state<float> st;
  const double before_acc = bitfit::token_accuracy(bitfit::predict_tokens(t.model, t.xs, st), t.xs);
  const auto before = t.model.params.data;
  auto opt = tiny_options();
  opt.learning_rate = 3e-2;
  bitfit::trainer<bitfit::bitfit_all> tr(t.model, opt);
  double first_loss = 0, last_loss = 0;
  for (int s = 1; s <= 60; ++s) {
    const auto batches = bitfit::epoch_batches(t.xs, 4, opt.seed + std::uint64_t(s), false);
    last_loss = tr.step(t.xs, batches[0], s, 60);
    if (s == 1) first_loss = last_loss;
  }
  const double after_acc = bitfit::token_accuracy(bitfit::predict_tokens(t.model, t.xs, st), t.xs);
  MESSAGE("token loss " << first_loss << " -> " << last_loss << ", accuracy " << before_acc << " -> " << after_acc);
  CHECK(last_loss < 0.9 * first_loss);
  CHECK(after_acc > before_acc + 0.1);
  static_assert(!bitfit::head_runs(bitfit::term::pooler_b, true) && bitfit::head_runs(bitfit::term::pooler_b, false) &&
                bitfit::head_runs(bitfit::term::bq, true));
  for (const auto& e : t.model.params.layout.entries) {
    const bool trained = e.is_bias && e.bias_term != bitfit::term::pooler_b;
    std::size_t changed = 0;
    for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) changed += t.model.params.data[i] != before[i];
    CAPTURE(e.name);
    if (trained) CHECK(changed > 0);
    else CHECK(changed == 0);
  }
  // Labels must cover every token; a sequence head's predict() refuses a per-token head.
  t.xs[0].token_labels.pop_back();
  CHECK_THROWS_AS(tr.step(t.xs, {0}, 61, 61), bitfit::error);
  CHECK_THROWS_AS(bitfit::predict(t.model, t.xs, st), bitfit::error);
}

TEST_CASE("trainer: rand_uniform and rand_row_col update exactly their BitFit-sized subset") {
  for (auto type : {bitfit::fine_tune_type::rand_uniform, bitfit::fine_tune_type::rand_row_col}) {
    CAPTURE(bitfit::fine_tune_type_name(type));
    tiny_task t;
    const auto before = t.model.params.data;
    const auto opt = tiny_options(type);
    bitfit::trainer<bitfit::weight_subset_mask> tr(t.model, opt);
    const auto& layout = t.model.params.layout;
    const auto keep = type == bitfit::fine_tune_type::rand_uniform
                          ? bitfit::random_uniform_subset(layout, layout.bias_size, opt.seed)
                          : bitfit::random_row_col_subset(layout, layout.bias_size, opt.seed);
    const auto selected = std::size_t(std::count(keep.begin(), keep.end(), 1));
    if (type == bitfit::fine_tune_type::rand_uniform) CHECK(selected == layout.bias_size);
    else CHECK((selected >= layout.bias_size && selected <= layout.bias_size + 16));  // whole rows/columns
    CHECK(tr.trained_parameters() == selected + t.model.head.W.size() + t.model.head.b.size());
    tr.step(t.xs, {0, 1, 2, 3}, 1, 1);
    std::size_t changed = 0, outside = 0;
    for (std::size_t i = 0; i < before.size(); ++i) {
      changed += t.model.params.data[i] != before[i];
      outside += !keep[i] && t.model.params.data[i] != before[i];
    }
    CHECK(outside == 0);
    CHECK(changed > selected / 2);
    // The optimizer holds the subset's entries alone (BERT-base: 0.8 MB of moments, not 872 MB),
    // and so does the training state.
    bitfit::test::temp_dir dir;
    tr.save_state(dir / "state.safetensors", {});
    const bitfit::safetensors_file f(dir / "state.safetensors");
    for (const char* name : {"param/bert.subset", "adam_m/bert.subset", "adam_v/bert.subset"})
      CHECK(f.info(name).shape == std::vector<std::int64_t>{std::int64_t(selected)});
  }
}

TEST_CASE("trainer: a non-finite loss stops the step before any update, naming the step") {
  tiny_task t;
  t.model.params.layers[1].bLN2[0] = std::numeric_limits<float>::quiet_NaN();
  const auto before = t.model.params.data;
  bitfit::trainer<bitfit::bitfit_all> tr(t.model, tiny_options());
  CHECK_THROWS_WITH_AS(tr.step(t.xs, {0, 1, 2}, 7, 10), doctest::Contains("training diverged at step 7"),
                       bitfit::training_diverged);
  for (std::size_t i = 0; i < before.size(); ++i)
    if (!std::isnan(before[i])) CHECK(t.model.params.data[i] == before[i]);
}

TEST_CASE("trainer: --bias-terms parsing") {
  CHECK(bitfit::parse_bias_terms({"query", "intermediate"}).bits == bitfit::bitfit_bq_bm2::bits());
  CHECK(bitfit::parse_bias_terms({"all"}).bits == bitfit::bitfit_all::bits());
  CHECK(bitfit::bias_terms_string(bitfit::parse_bias_terms({"intermediate", "query"})) == "query intermediate");
  CHECK_THROWS_WITH_AS(bitfit::parse_bias_terms({"query", "query"}), doctest::Contains("given twice"), bitfit::error);
  CHECK_THROWS_WITH_AS(bitfit::parse_bias_terms({"querry"}), doctest::Contains("unknown term 'querry'"), bitfit::error);
}

// ---- Resumable training: save_state / load_state (issue #9). ----
namespace {

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Options that exercise every piece of state: warmup, decay, a head rate of its own, dropout, clipping.
bitfit::train_options resume_options(bitfit::fine_tune_type type = bitfit::fine_tune_type::bitfit) {
  auto o = tiny_options(type);
  o.warmup_steps = 2;
  o.linear_decay = true;
  o.head_learning_rate = 5e-3;
  o.max_grad_norm = 0.5;
  return o;
}

/// Trains `total` steps in one go, and again as `cut` steps, save_state, a fresh model and trainer
/// (the process killed in between), load_state and the remaining steps: the two must end bit-identical.
template <class Mask>
void check_resume(const bitfit::train_options& opt, const Mask& mask = {}) {
  constexpr int total = 6, cut = 3;
  tiny_task whole;
  {
    bitfit::trainer<Mask> tr(whole.model, opt, mask);
    whole.run(tr, opt, 1, total, total);
  }
  bitfit::test::temp_dir dir;
  const auto file = dir / "state.safetensors";
  const std::map<std::string, std::string> meta = {{"epoch", "1"}, {"step", std::to_string(cut)},
                                                   {"metrics", R"({"epoch": [{"dev_accuracy": 0.5}]})"}};
  {
    tiny_task first;
    bitfit::trainer<Mask> tr(first.model, opt, mask);
    first.run(tr, opt, 1, cut, total);
    tr.save_state(file, meta);
  }
  tiny_task resumed;  // the same initial parameters, as a restarted process loads them
  bitfit::trainer<Mask> tr(resumed.model, opt, mask);
  const auto loaded = tr.load_state(file);
  CHECK(loaded == meta);
  resumed.run(tr, opt, std::stoi(loaded.at("step")) + 1, total, total);
  CHECK(bit_equal(snapshot(resumed.model), snapshot(whole.model)));

  // Without the state the same continuation ends elsewhere: the comparison above can fail.
  tiny_task fresh;
  bitfit::trainer<Mask> tf(fresh.model, opt, mask);
  fresh.run(tf, opt, cut + 1, total, total);
  CHECK(!bit_equal(snapshot(fresh.model), snapshot(whole.model)));
}

}  // namespace

TEST_CASE("trainer: a run resumed from save_state ends bit-identical to an uninterrupted one") {
  SUBCASE("bitfit, every bias term (compiled preset)") { check_resume<bitfit::bitfit_all>(resume_options()); }
  SUBCASE("bitfit, a runtime mask above a first trainable layer") {
    auto opt = resume_options();
    opt.first_trainable_layer = 1;
    check_resume(opt, bitfit::runtime_mask{}.add(bitfit::term::bq).add(bitfit::term::bLN2).add(bitfit::term::pooler_b));
  }
  SUBCASE("frozen (head only)") { check_resume<bitfit::frozen_mask>(resume_options(bitfit::fine_tune_type::frozen)); }
  SUBCASE("full_ft") { check_resume<bitfit::full_mask>(resume_options(bitfit::fine_tune_type::full_ft)); }
  SUBCASE("rand_uniform") { check_resume<bitfit::weight_subset_mask>(resume_options(bitfit::fine_tune_type::rand_uniform)); }
  SUBCASE("rand_row_col") { check_resume<bitfit::weight_subset_mask>(resume_options(bitfit::fine_tune_type::rand_row_col)); }
}

TEST_CASE("trainer: a state saved under a compiled preset resumes under the equivalent runtime mask") {
  const auto opt = resume_options();
  bitfit::test::temp_dir dir;
  const auto file = dir / "state.safetensors";
  tiny_task whole, first, resumed;
  bitfit::trainer<bitfit::bitfit_all> tw(whole.model, opt), t1(first.model, opt);
  whole.run(tw, opt, 1, 4, 4);
  first.run(t1, opt, 1, 2, 4);
  t1.save_state(file, {});
  bitfit::trainer<bitfit::runtime_mask> tr(resumed.model, opt, bitfit::runtime_mask{bitfit::bitfit_all::bits()});
  CHECK(tr.load_state(file).empty());
  resumed.run(tr, opt, 3, 4, 4);
  CHECK(bit_equal(snapshot(resumed.model), snapshot(whole.model)));
}

namespace {

/// A trainer two steps into a four-step run, to load bad states into: load_state must leave it
/// exactly as it was (model and moments), which finishing the run and comparing shows.
struct victim {
  bitfit::train_options opt = resume_options();
  tiny_task task;
  bitfit::trainer<bitfit::bitfit_all> tr{task.model, opt};
  std::vector<float> before;
  victim() {
    task.run(tr, opt, 1, 2, 4);
    before = snapshot(task.model);
  }
  /// The message of load_state(file); checks that nothing changed.
  std::string refuse(const std::filesystem::path& file) {
    const auto message = bitfit::test::error_of([&] { tr.load_state(file); });
    CHECK(bit_equal(snapshot(task.model), before));
    task.run(tr, opt, 3, 4, 4);
    tiny_task reference;
    bitfit::trainer<bitfit::bitfit_all> ref(reference.model, opt);
    reference.run(ref, opt, 1, 4, 4);
    CHECK(bit_equal(snapshot(task.model), snapshot(reference.model)));
    return message;
  }
};

}  // namespace

TEST_CASE("trainer: load_state refuses a state of another configuration, naming the file, and changes nothing") {
  bitfit::test::temp_dir dir;
  auto save = [&](auto mask, bitfit::train_options opt, const std::string& name, int labels = 2) {
    tiny_task t;
    if (labels != 2) t.model.head = bitfit::task_head<float>::init(labels, 8, 11);
    bitfit::trainer<decltype(mask)> tr(t.model, opt, mask);
    t.run(tr, opt, 1, 1, 4);
    tr.save_state(dir / name, {{"step", "1"}});
    return dir / name;
  };
  auto other_layer = resume_options();
  other_layer.first_trainable_layer = 1;
  const struct {
    std::filesystem::path file;
    std::string says;
  } cases[] = {
      {save(bitfit::bitfit_bq_bm2{}, resume_options(), "terms.safetensors"), "its bias_terms is 'query intermediate'"},
      {save(bitfit::bitfit_all{}, other_layer, "layer.safetensors"), "its first_trainable_layer is '1'"},
      {save(bitfit::full_mask{}, resume_options(bitfit::fine_tune_type::full_ft), "full.safetensors"),
       "its bias_terms is '(every parameter)'"},
      {save(bitfit::bitfit_all{}, resume_options(), "head.safetensors", 3), "its head is '3x8'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.file);
    victim v;
    const auto message = v.refuse(c.file);
    CHECK(message.find(c.file.string() + ": training state of another configuration") != std::string::npos);
    CHECK(message.find(c.says) != std::string::npos);
    CHECK(message.find("resume with the options it was saved with") != std::string::npos);
  }
}

TEST_CASE("trainer: load_state refuses a truncated, corrupt or incomplete state file and changes nothing") {
  bitfit::test::temp_dir dir;
  const auto good = dir / "good.safetensors";
  {
    victim v;
    v.tr.save_state(good, {{"step", "2"}});
  }
  const std::string bytes = read_bytes(good);
  auto with = [&](std::string b, std::size_t at, std::string_view from, std::string_view to) {
    REQUIRE(b.find(from) != std::string::npos);
    return b.replace(at == std::string::npos ? b.find(from) : at, from.size(), to);
  };
  std::string flipped = bytes;
  flipped[bytes.size() - 5] ^= 0x10;  // inside adam_v of the head's bias: a valid file with a wrong value
  const std::string format = bitfit::detail::train_state_format;
  const struct {
    std::string name, bytes, says;
  } cases[] = {
      {"truncated", bytes.substr(0, bytes.size() - 4), "truncated"},
      {"header-only", bytes.substr(0, 8), "header length"},
      {"empty", "", "too short"},
      {"flipped", flipped, "training state is corrupt"},
      {"format", with(bytes, std::string::npos, format, format.substr(0, format.size() - 1) + "9"),
       "not a bitfit training state"},
      {"not-json", with(bytes, 8, "{", "["), "header"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto file = dir.write(c.name + ".safetensors", c.bytes);
    victim v;
    const auto message = v.refuse(file);
    CHECK(message.find(file.string() + ": ") == 0);
    CHECK(message.find(c.says) != std::string::npos);
  }

  // Right metadata, a tensor missing; then an extra one.
  const bitfit::safetensors_file f(good);
  std::map<std::string, std::string> meta;
  for (const auto& [key, value] : f.metadata().items()) meta[key] = value.get<std::string>();
  std::vector<bitfit::tensor_to_write> ts;
  for (const auto& name : f.names()) {
    const auto& info = f.info(name);
    ts.push_back({name, info.shape, f.f32(name, std::span<const std::int64_t>(info.shape))});
  }
  const auto missing = ts.back().name;
  const std::vector<bitfit::tensor_to_write> fewer(ts.begin(), ts.end() - 1);
  bitfit::write_safetensors(dir / "fewer.safetensors", fewer, meta);
  {
    victim v;
    CHECK(v.refuse(dir / "fewer.safetensors") ==
          (dir / "fewer.safetensors").string() + ": training state lacks the tensor '" + missing + "'");
  }
  const std::vector<float> one = {1.0f};
  ts.push_back({"param/extra", {1}, one});
  bitfit::write_safetensors(dir / "more.safetensors", ts, meta);
  {
    victim v;
    CHECK(v.refuse(dir / "more.safetensors").find("holds " + std::to_string(ts.size()) + " tensors") != std::string::npos);
  }
  // A state file from a patch: not one.
  {
    victim v;
    bitfit::save_patch(dir / "patch.safetensors", v.task.model.params, v.tr.trained_entries(), v.task.model.head, {});
    CHECK(v.refuse(dir / "patch.safetensors").find("not a bitfit training state (format 'bitfit-patch/2'") !=
          std::string::npos);
  }
}

TEST_CASE("trainer: first_trainable_layer = 2 trains nothing below layer 2, the embedding LayerNorm included") {
  auto check_frozen_below = [](auto mask) {
    tiny_task t(4);
    auto opt = tiny_options();
    opt.first_trainable_layer = 2;
    const auto before = t.model.params.data;
    bitfit::trainer<decltype(mask)> tr(t.model, opt, mask);
    t.run(tr, opt, 1, 3, 3);
    CHECK(tr.state().lowest == 2);             // the backward stops at layer 2 ...
    CHECK(tr.state().caches.size() == 2 + 1);  // ... and the forward caches layers 2 and 3 only (+ one shared)
    for (const auto* e : tr.trained_entries())
      CHECK_MESSAGE((e->layer >= 2 || e->bias_term == bitfit::term::pooler_b), e->name);
    std::map<std::string, std::size_t> changed;
    for (const auto& e : t.model.params.layout.entries) {
      if (!e.is_bias) continue;
      const bool frozen = e.bias_term == bitfit::term::emb_bLN || (e.layer >= 0 && e.layer < 2);
      std::size_t n = 0;
      for (std::size_t i = e.offset; i < e.offset + e.numel; ++i)
        n += std::memcmp(&t.model.params.data[i], &before[i], sizeof(float)) != 0;
      if (frozen) CHECK_MESSAGE(n == 0, e.name);
      changed[e.bias_term == bitfit::term::pooler_b ? "pooler" : e.layer >= 2 ? "upper" : "lower"] += n;
    }
    CHECK(changed["lower"] == 0);
    CHECK(changed["upper"] > 0);
    CHECK(changed["pooler"] == 8);  // the pooler bias sits above every layer: it still trains
  };
  check_frozen_below(bitfit::bitfit_all{});
  check_frozen_below(bitfit::runtime_mask{bitfit::bitfit_all::bits()});

  // With first_trainable_layer = 0 the embedding LayerNorm bias trains, and the backward reaches it.
  tiny_task t(4);
  const auto before = t.model.params.emb_bLN[0];
  bitfit::trainer<bitfit::bitfit_all> tr(t.model, tiny_options());
  t.run(tr, tiny_options(), 1, 1, 1);
  CHECK(tr.state().lowest == -1);
  CHECK(t.model.params.emb_bLN[0] != before);
}

TEST_CASE("trainer: learning_rate 0 with a head rate trains only the head, exactly as frozen training at that rate") {
  for (double clip : {0.0, 1.0}) {
    CAPTURE(clip);
    auto opt = tiny_options();
    opt.learning_rate = 0.0;
    opt.head_learning_rate = 1e-3;
    opt.warmup_steps = 2;
    opt.linear_decay = true;
    opt.max_grad_norm = clip;
    tiny_task t;
    const auto head_before = t.model.head.W;
    const std::vector<float> params_before(t.model.params.data.begin(), t.model.params.data.end());
    const auto after = t.train<bitfit::bitfit_all>(opt, 4);
    CHECK(std::all_of(after.begin(), after.end(), [](float x) { return std::isfinite(x); }));
    const std::vector<float> params_after(t.model.params.data.begin(), t.model.params.data.end());
    CHECK(bit_equal(params_after, params_before));
    CHECK(t.model.head.W != head_before);
    if (clip == 0.0) {  // unclipped, the head sees the same gradients as in head-only training
      auto frozen = opt;
      frozen.type = bitfit::fine_tune_type::frozen;
      frozen.learning_rate = 1e-3;
      CHECK(bit_equal(tiny_task().train<bitfit::frozen_mask>(frozen, 4), after));
    }
  }
}

TEST_CASE("trainer: the schedule's factor applies to every rate") {
  tiny_task t;
  auto opt = tiny_options();
  opt.learning_rate = 2e-3;
  opt.warmup_steps = 2;
  opt.linear_decay = true;
  bitfit::trainer<bitfit::bitfit_all> tr(t.model, opt);
  CHECK(tr.schedule_factor(1, 6) == 0.5);
  CHECK(tr.schedule_factor(2, 6) == 1.0);
  CHECK(tr.schedule_factor(4, 6) == 0.5);
  CHECK(tr.schedule_factor(6, 6) == 0.0);
  CHECK(tr.scheduled_lr(4, 6) == 1e-3);
}

TEST_CASE("trainer: train_epoch steps every batch of the epoch's shuffle, in order, and reports the mean loss") {
  auto opt = tiny_options();
  opt.batch_size = 5;  // 12 examples: batches of 5, 5, 2
  tiny_task by_hand, by_epoch;
  bitfit::trainer<bitfit::bitfit_all> a(by_hand.model, opt), b(by_epoch.model, opt);
  // What train_epoch promises: epoch_batches from (seed, epoch), one step each, the run's step count.
  long hand_step = 3;
  double loss_sum = 0;
  for (const auto& batch : bitfit::epoch_batches(by_hand.xs, 5, bitfit::detail::derive_seed(opt.seed, 0xE90C + 2), false))
    loss_sum += a.step(by_hand.xs, batch, ++hand_step, 10) * double(batch.size());
  long step = 3;
  std::vector<long> seen;
  std::size_t last_done = 0;
  const auto r = bitfit::train_epoch(b, by_epoch.xs, 2, step, 10, [&](const bitfit::step_report& at) {
    seen.push_back(at.step);
    CHECK(at.done > last_done);
    last_done = at.done;
  });
  CHECK(seen == std::vector<long>{4, 5, 6});
  CHECK(step == 6);
  CHECK(r.epoch == 2);
  CHECK(r.done == 12);
  CHECK(r.total == 12);
  CHECK(r.loss == doctest::Approx(loss_sum / 12).epsilon(1e-12));
  CHECK(bit_equal(snapshot(by_epoch.model), snapshot(by_hand.model)));
}

TEST_CASE("trainer: an epoch saved after a step and resumed from its report ends bit-identical, totals included") {
  auto opt = resume_options();
  opt.batch_size = 5;  // 12 examples: batches of 5, 5, 2
  long step = 0;
  tiny_task whole;
  bitfit::step_report straight;
  {
    bitfit::trainer<bitfit::bitfit_all> tr(whole.model, opt);
    bitfit::train_epoch(tr, whole.xs, 1, step, 6);
    straight = bitfit::train_epoch(tr, whole.xs, 2, step, 6);
  }
  // The process killed after epoch 2's first batch: its state and report saved there.
  bitfit::test::temp_dir dir;
  const auto file = dir / "state.safetensors";
  bitfit::step_report at_save;
  {
    tiny_task first;
    bitfit::trainer<bitfit::bitfit_all> tr(first.model, opt);
    long s = 0;
    bitfit::train_epoch(tr, first.xs, 1, s, 6);
    bitfit::train_epoch(tr, first.xs, 2, s, 6, [&](const bitfit::step_report& at) {
      if (at.batches == 1) tr.save_state(file, {}), at_save = at;
    });
  }
  tiny_task resumed;
  bitfit::trainer<bitfit::bitfit_all> tr(resumed.model, opt);
  tr.load_state(file);
  long s = at_save.step;
  CHECK(s == 4);
  std::vector<long> seen;
  const auto r = bitfit::train_epoch(tr, resumed.xs, 2, s, 6, [&](const bitfit::step_report& at) { seen.push_back(at.step); },
                                     &at_save);
  CHECK(seen == std::vector<long>{5, 6});
  CHECK(bit_equal(snapshot(resumed.model), snapshot(whole.model)));
  CHECK(r.done == 12);
  CHECK(r.batches == 3);
  CHECK(r.loss_sum == straight.loss_sum);
  CHECK(r.loss == straight.loss);
  CHECK(r.tokens == straight.tokens);
  // A report of another epoch, or of other data, is refused rather than misapplied.
  CHECK_THROWS_AS(bitfit::train_epoch(tr, resumed.xs, 3, s, 6, [](const bitfit::step_report&) {}, &at_save), bitfit::error);
}

// ---- Per-group learning rates (lr_group): torch.optim.AdamW with parameter groups, the spans
// the rates reach, and the types that refuse them. Goldens: tests/data/adamw_groups, made by
// tools/goldens/make_adamw_group_goldens.py (float32, the trainer's precision). ----
namespace {

/// The library's group of a golden tensor: the group of its HF name's bias term, or the head.
bitfit::lr_group group_of(const bitfit::param_layout& layout, const std::string& name) {
  return name.starts_with("classifier.") ? bitfit::lr_group::head : bitfit::lr_group_of(layout.find(name).bias_term);
}

/// Steps every tensor of a golden case with adamw_update<float> at the rate train_options::rate()
/// gives its group, as the trainer updates its spans; returns the largest |ours - torch| / |torch|
/// over every value after every step.
double run_group_case(const std::string& name) {
  const auto dir = bitfit::test::golden_dir() / "adamw_groups" / name;
  const auto meta = nlohmann::json::parse(std::ifstream(dir / "meta.json"));
  const auto& rates = meta.at("rates");
  bitfit::train_options opt;
  opt.learning_rate = rates.at("backbone");
  opt.head_learning_rate = rates.at("head");
  opt.attention_learning_rate = rates.at("attention").get<double>();
  opt.mlp_learning_rate = rates.at("mlp").get<double>();
  opt.layernorm_learning_rate = rates.at("layernorm").get<double>();
  opt.optimizer.weight_decay = meta.at("weight_decay");
  CHECK(meta.at("betas") == nlohmann::json{opt.optimizer.beta1, opt.optimizer.beta2});  // the library's defaults
  CHECK(meta.at("eps") == opt.optimizer.eps);
  auto config = bitfit::test::tiny_config();
  config.hidden_size = 4, config.intermediate_size = 6, config.num_hidden_layers = 1;
  const bitfit::param_layout layout(config);
  const int steps = meta.at("steps");
  double worst = 0;
  std::set<bitfit::lr_group> seen;
  for (std::size_t i = 0; i < meta.at("tensors").size(); ++i) {
    const auto& tensor = meta["tensors"][i];
    const std::string tname = tensor.at("name");
    CAPTURE(tname);
    const auto group = group_of(layout, tname);
    CHECK(bitfit::lr_group_name(group) == tensor.at("group").get<std::string>());
    const double lr = opt.rate(group);
    CHECK(lr == tensor.at("lr").get<double>());
    seen.insert(group);
    const auto n = [&](const char* what) { return dir / (what + std::to_string(i) + ".npy"); };
    const auto init = npy<float>(dir / ("param" + std::to_string(i) + "_init.npy"));
    const auto grads = npy<float>(n("grad")), after = npy<float>(n("param"));
    const std::vector<float> initial(init.begin(), init.end());
    std::vector<float> p = initial;
    bitfit::adam_moments<float> moments(p.size());
    for (int t = 1; t <= steps; ++t) {
      const auto g = xt::eval(xt::view(grads, t - 1));
      const auto want = xt::eval(xt::view(after, t - 1));
      bitfit::adamw_update<float>(p, std::vector<float>(g.begin(), g.end()), moments, opt.optimizer, lr, t);
      for (std::size_t k = 0; k < p.size(); ++k)
        worst = std::max(worst, std::fabs(double(p[k]) - double(want.data()[k])) / std::fabs(double(want.data()[k])));
      if (lr == 0) CHECK(bit_equal(p, initial));  // a group at rate 0 stays bit for bit, as torch's
    }
  }
  CHECK(seen.size() == bitfit::all_lr_groups.size());
  return worst;
}

/// The largest change of each group's entries between `before` and `m` (head: W and b).
std::map<bitfit::lr_group, double> largest_change(const bitfit::sequence_classifier& m, const std::vector<float>& before,
                                                  const std::vector<float>& head_before) {
  std::map<bitfit::lr_group, double> out;
  for (const auto& e : m.params.layout.entries) {
    if (!e.is_bias) continue;
    auto& d = out[bitfit::lr_group_of(e.bias_term)];
    for (std::size_t i = e.offset; i < e.offset + e.numel; ++i)
      d = std::max(d, std::fabs(double(m.params.data[i]) - double(before[i])));
  }
  std::vector<float> head(m.head.W.begin(), m.head.W.end());
  head.insert(head.end(), m.head.b.begin(), m.head.b.end());
  auto& d = out[bitfit::lr_group::head];
  for (std::size_t i = 0; i < head.size(); ++i) d = std::max(d, std::fabs(double(head[i]) - double(head_before[i])));
  return out;
}

}  // namespace

TEST_CASE("per-group AdamW steps equal torch.optim.AdamW with parameter groups (float32, 1e-6 relative)") {
  for (std::string name : {"nodecay", "decay", "frozen_group"}) {
    CAPTURE(name);
    const double worst = run_group_case(name);
    MESSAGE(name << ": largest relative deviation from torch " << worst);
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("trainer: each group's spans train at its rate times the schedule's factor; a group at rate 0 does not move") {
  using bitfit::lr_group;
  for (lr_group frozen : {lr_group::backbone, lr_group::attention, lr_group::mlp, lr_group::layernorm, lr_group::head}) {
    CAPTURE(bitfit::lr_group_name(frozen));
    auto opt = tiny_options();
    opt.learning_rate = 1e-2;  // the backbone group: the pooler bias
    opt.attention_learning_rate = 2e-2;
    opt.mlp_learning_rate = 5e-3;
    opt.layernorm_learning_rate = 3e-2;
    opt.head_learning_rate = 4e-2;
    opt.warmup_steps = 2;  // step 1 runs at half of every rate
    switch (frozen) {
      case lr_group::backbone: opt.learning_rate = 0; break;
      case lr_group::attention: opt.attention_learning_rate = 0.0; break;
      case lr_group::mlp: opt.mlp_learning_rate = 0.0; break;
      case lr_group::layernorm: opt.layernorm_learning_rate = 0.0; break;
      case lr_group::head: opt.head_learning_rate = 0.0; break;
    }
    tiny_task t;
    const std::vector<float> before(t.model.params.data.begin(), t.model.params.data.end());
    std::vector<float> head_before(t.model.head.W.begin(), t.model.head.W.end());
    head_before.insert(head_before.end(), t.model.head.b.begin(), t.model.head.b.end());
    bitfit::trainer<bitfit::runtime_mask> tr(t.model, opt, bitfit::runtime_mask{bitfit::bitfit_all::bits()});
    t.run(tr, opt, 1, 1, 4);
    // Adam's first step moves an entry by rate·|g|/(|g| + eps): the largest move is the rate.
    for (const auto& [group, change] : largest_change(t.model, before, head_before)) {
      CAPTURE(bitfit::lr_group_name(group));
      if (opt.rate(group) == 0) CHECK(change == 0.0);
      else CHECK(change == doctest::Approx(0.5 * opt.rate(group)).epsilon(1e-3));
    }
  }
  // A group rate equal to learning_rate is the same run as no group rate.
  auto opt = tiny_options();
  const auto unset = tiny_task().train<bitfit::bitfit_all>(opt, 3);
  opt.attention_learning_rate = opt.mlp_learning_rate = opt.layernorm_learning_rate = opt.learning_rate;
  CHECK(bit_equal(tiny_task().train<bitfit::bitfit_all>(opt, 3), unset));
}

TEST_CASE("trainer: group rates are bitfit's; full_ft, the random subsets and frozen refuse them, saying why") {
  tiny_task t;
  for (auto type : {bitfit::fine_tune_type::full_ft, bitfit::fine_tune_type::rand_uniform,
                    bitfit::fine_tune_type::rand_row_col, bitfit::fine_tune_type::frozen}) {
    const std::string name(bitfit::fine_tune_type_name(type));
    CAPTURE(name);
    auto opt = tiny_options(type);
    opt.layernorm_learning_rate = 1e-3;
    const auto message = bitfit::test::error_of([&] { bitfit::with_trainer(t.model, opt, [](auto&) { return 0; }); });
    CHECK(message.starts_with(name + ": the attention, mlp and layernorm learning rates apply to bitfit's bias terms only"));
    CHECK(message.find(type == bitfit::fine_tune_type::frozen ? "trains the head only" : "trains one span of all parameters") !=
          std::string::npos);
    opt.layernorm_learning_rate.reset();
    CHECK_NOTHROW(bitfit::with_trainer(t.model, opt, [](auto&) { return 0; }));
  }
  // A rate is finite and not negative, whichever it is.
  auto opt = tiny_options();
  opt.attention_learning_rate = -1e-3;
  CHECK(bitfit::test::error_of([&] { bitfit::check_rates(opt); }) == "attention_learning_rate must be finite and >= 0, got -0.001");
  opt.attention_learning_rate = std::numeric_limits<double>::quiet_NaN();
  CHECK(bitfit::test::error_of([&] { bitfit::check_rates(opt); }) == "attention_learning_rate must be finite and >= 0, got nan");
  opt.attention_learning_rate.reset();
  opt.learning_rate = -1;
  CHECK(bitfit::test::error_of([&] { bitfit::check_rates(opt); }) == "learning_rate must be finite and >= 0, got -1");
  // Rates that would train nothing are refused: 0 freezes, the head's 0 as any group's.
  opt.learning_rate = 0;
  opt.head_learning_rate = 0.0;
  CHECK(bitfit::test::error_of([&] { bitfit::check_rates(opt); }) ==
        "learning_rate, head_learning_rate and the group rates are all 0: nothing would train");
  opt.mlp_learning_rate = 1e-3;
  CHECK_NOTHROW(bitfit::check_rates(opt));
  opt.mlp_learning_rate.reset();
  opt.type = bitfit::fine_tune_type::frozen;
  opt.learning_rate = 1e-3;
  CHECK(bitfit::test::error_of([&] { bitfit::check_rates(opt); }) ==
        "frozen trains the head only, and head_learning_rate is 0: nothing would train");
  opt.type = bitfit::fine_tune_type::bitfit;
  opt.head_learning_rate.reset();
  // A group the mask does not train takes a rate without complaint: its rate applies to no span.
  opt.learning_rate = 1e-2;
  opt.layernorm_learning_rate = 0.0;
  CHECK_NOTHROW(tiny_task().train<bitfit::bitfit_bq_bm2>(opt, 1));
}
