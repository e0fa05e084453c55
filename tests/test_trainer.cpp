// Training parity with PyTorch autograd on the real checkpoint (HF BertForSequenceClassification,
// fixed head, dropout off), determinism, and compiled versus runtime mask dispatch.
// Goldens: tests/data/grad, made by tools/goldens/make_grad_goldens.py (float64 reference).
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/train/trainer.hpp>

#include <doctest/doctest.h>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace {

std::filesystem::path gdir() { return bitfit::test::golden_dir() / "grad"; }
template <class V>
xt::xarray<V> npy(const std::filesystem::path& p) { return xt::load_npy<V>(p.string()); }

struct golden_batch {
  bitfit::token_batch batch;
  std::vector<int> labels;
  double loss = 0;
  xt::xarray<double> logits;
};

golden_batch load_batch(const std::string& name) {
  const auto d = gdir() / name;
  auto ids = npy<int>(d / "input_ids.npy"), types = npy<int>(d / "token_type_ids.npy"), mask = npy<int>(d / "attention_mask.npy");
  auto labels = npy<int>(d / "labels.npy");
  golden_batch g;
  for (std::size_t b = 0; b < ids.shape(0); ++b) {
    std::vector<std::int32_t> i, t;
    for (std::size_t k = 0; k < ids.shape(1) && mask(b, k); ++k) i.push_back(ids(b, k)), t.push_back(types(b, k));
    g.batch.add(i, t);
    g.labels.push_back(labels(b));
  }
  g.loss = npy<double>(d / "loss.npy")();
  g.logits = npy<double>(d / "logits.npy");
  return g;
}

template <class T>
bitfit::task_head<T> golden_head(int H) {
  bitfit::task_head<T> h(2, H);
  auto W = npy<float>(gdir() / "head_weight.npy");
  auto b = npy<float>(gdir() / "head_bias.npy");
  for (std::size_t i = 0; i < h.W.size(); ++i) h.W[i] = T(W.data()[i]);
  for (std::size_t i = 0; i < h.b.size(); ++i) h.b[i] = T(b.data()[i]);
  return h;
}

/// The loss and gradients of one batch, computed by our ops in precision T.
template <class T, class Mask>
struct grads_of {
  double loss = 0;
  std::vector<T> logits;
  bitfit::bert_params<T> g;
  bitfit::task_head<T> dhead;
  grads_of(const bitfit::bert_params<T>& p, const bitfit::task_head<T>& head, const golden_batch& gb)
      : g(p.config, Mask::weight_grads), dhead(head.C, head.H) {
    const int B = gb.batch.size(), H = head.H;
    bitfit::encoder_state<T> st;
    bitfit::encoder_forward(st, p, gb.batch, Mask{});
    std::vector<T> x(std::size_t(B) * H), dlogits(std::size_t(B) * 2), dpooled(std::size_t(B) * H);
    logits.resize(std::size_t(B) * 2);
    bitfit::head_forward(logits.data(), x.data(), st.pooled.data(), head, B);
    loss = bitfit::cross_entropy(dlogits.data(), logits.data(), gb.labels, 2);
    bitfit::head_backward(dpooled.data(), dhead, dlogits.data(), x.data(), head, B);
    bitfit::encoder_backward(g, st, p, gb.batch, dpooled.data(), Mask{});
  }
};

/// Largest violation of |a - b| <= rel·|b| + abs over a tensor, as a multiple of that bound.
template <class A>
double worst_ratio(const A* ours, const double* ref, std::size_t n, double rel, double abs) {
  double w = 0;
  for (std::size_t i = 0; i < n; ++i) w = std::max(w, std::fabs(double(ours[i]) - ref[i]) / (rel * std::fabs(ref[i]) + abs));
  return w;
}

template <class T>
void check_bias_parity(const std::string& batch_name, double rel, double abs) {
  const auto params = bitfit::load_bert_params<T>(bitfit::test::model_dir());
  const int L = params.config.num_hidden_layers, H = params.config.hidden_size;
  const auto head = golden_head<T>(H);
  const auto gb = load_batch(batch_name);
  grads_of<T, bitfit::bitfit_all> r(params, head, gb);
  CHECK(r.loss == doctest::Approx(gb.loss).epsilon(1e-6));
  CHECK(worst_ratio(r.logits.data(), gb.logits.data(), r.logits.size(), rel, abs) <= 1.0);
  for (bitfit::term t : bitfit::all_terms) {
    const auto ref = npy<double>(gdir() / batch_name / (std::string(bitfit::term_name(t)) + ".npy"));
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
  const auto hW = npy<double>(gdir() / batch_name / "head_W.npy"), hb = npy<double>(gdir() / batch_name / "head_b.npy");
  CHECK(worst_ratio(r.dhead.W.data(), hW.data(), hW.size(), rel, abs) <= 1.0);
  CHECK(worst_ratio(r.dhead.b.data(), hb.data(), hb.size(), rel, abs) <= 1.0);
}

}  // namespace

TEST_CASE("loss and every bias and head gradient match PyTorch autograd (float32: 1e-4 rel or 1e-6 abs)") {
  for (const char* b : {"single", "pair"}) check_bias_parity<float>(b, 1e-4, 1e-6);
}

TEST_CASE("the double instantiation matches PyTorch's float64 autograd to 1e-9 relative") {
  for (const char* b : {"single", "pair"}) check_bias_parity<double>(b, 1e-9, 1e-13);
}

TEST_CASE("full_ft weight gradients match PyTorch autograd on sampled entries and in norm") {
  const auto params = bitfit::load_bert_params<float>(bitfit::test::model_dir());
  const auto head = golden_head<float>(params.config.hidden_size);
  for (const char* name : {"single", "pair"}) {
    const auto gb = load_batch(name);
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

bitfit::sequence_classifier tiny_model() {
  bitfit::sequence_classifier m{bitfit::bert_params<float>(bitfit::test::tiny_config(), true), bitfit::task_head<float>::init(2, 8, 11)};
  for (std::size_t i = 0; i < m.params.data.size(); ++i)
    m.params.data[i] = float(double(bitfit::detail::mix64(i) >> 11) * 0x1.0p-53 - 0.5);
  return m;
}

struct tiny_task {
  bitfit::sequence_classifier model = tiny_model();
  std::vector<bitfit::encoded_example> xs;

  tiny_task() {
    for (int n = 0; n < 12; ++n) {  // sequences of 2..7 tokens, label = parity of the first id
      bitfit::encoded_example e;
      for (int t = 0; t < 2 + n % 6; ++t) e.ids.push_back(std::int32_t((7 * n + 3 * t) % 50)), e.types.push_back(t > 2);
      e.label = e.ids[0] % 2;
      xs.push_back(std::move(e));
    }
  }

  /// Parameters and head after `steps` steps of batches of 4 under `opt`, with policy `Mask`.
  template <class Mask>
  std::vector<float> train(const bitfit::train_options& opt, int steps, const Mask& mask = {}) {
    bitfit::trainer<Mask> tr(model, opt, mask);
    for (int s = 1; s <= steps; ++s) {
      const auto batches = bitfit::epoch_batches(xs, 4, opt.seed + std::uint64_t(s), false);
      tr.step(xs, batches[0], s, steps);
    }
    std::vector<float> all(model.params.data.begin(), model.params.data.end());
    all.insert(all.end(), model.head.W.begin(), model.head.W.end());
    all.insert(all.end(), model.head.b.begin(), model.head.b.end());
    return all;
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

TEST_CASE("trainer: rand_uniform and rand_row_col update exactly their BitFit-sized subset") {
  for (auto type : {bitfit::fine_tune_type::rand_uniform, bitfit::fine_tune_type::rand_row_col}) {
    CAPTURE(bitfit::fine_tune_type_name(type));
    tiny_task t;
    const auto before = t.model.params.data;
    const auto opt = tiny_options(type);
    bitfit::trainer<bitfit::full_mask> tr(t.model, opt);
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
