// Parity of the encoder forward with Hugging Face transformers on the real checkpoint.
// Goldens: tests/data/encoder, made by tools/goldens/make_encoder_goldens.py (float64 reference).
// Token ids come from the goldens, so this test checks the model, not the tokenizer.
#include "encoder_goldens.hpp"
#include "test_support.hpp"

#include <bitfit/model/checkpoint.hpp>
#include <bitfit/model/encoder.hpp>
#include <bitfit/model/pooling.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

using bitfit::test::encoder_goldens;
using bitfit::test::max_abs_diff;

TEST_CASE("encoder forward matches HF transformers on every golden input within 1e-4") {
  const encoder_goldens g(bitfit::test::golden_dir() / "encoder");
  const auto params = bitfit::load_bert_params<float>(bitfit::test::model_dir());
  const int H = params.config.hidden_size;
  const std::size_t N = g.size();
  REQUIRE(N >= 30);
  const auto batch = g.batch();
  bitfit::encoder_state<float> st;
  bitfit::encoder_forward(st, params, batch, bitfit::no_grad{});

  const double e_hidden = max_abs_diff(st.last_hidden, g.hidden.data(), std::size_t(batch.tokens()) * H);
  const double e_pooler = max_abs_diff(st.pooled.data(), g.pooler.data(), N * H);
  const auto mean = bitfit::pool(st, batch, H, bitfit::pooling::mean);
  const double e_mean = max_abs_diff(mean.data(), g.mean.data(), N * H);
  const double e_cls = max_abs_diff(st.cls.data(), g.cls.data(), N * H);
  std::printf("parity (%zu inputs, %d tokens): max abs diff hidden %.3g pooler %.3g mean %.3g cls %.3g\n", N,
              batch.tokens(), e_hidden, e_pooler, e_mean, e_cls);
  CHECK(e_hidden <= 1e-4);
  CHECK(e_pooler <= 1e-4);
  CHECK(e_mean <= 1e-4);
  CHECK(e_cls <= 1e-4);
}

TEST_CASE("a sequence's output does not depend on the other sequences in its batch") {
  const encoder_goldens g(bitfit::test::golden_dir() / "encoder");
  const auto params = bitfit::load_bert_params<float>(bitfit::test::model_dir());
  const int H = params.config.hidden_size;
  const auto all = g.batch(0, 6), one = g.batch(3, 4);
  bitfit::encoder_state<float> a, b;
  bitfit::encoder_forward(a, params, all, bitfit::no_grad{});
  bitfit::encoder_forward(b, params, one, bitfit::no_grad{});
  CHECK(max_abs_diff(a.pooled.data() + 3 * H, b.pooled.data(), std::size_t(H)) <= 1e-5);
}

TEST_CASE("loading rejects a checkpoint whose shapes disagree with the config") {
  const auto dir = bitfit::test::model_dir();
  bitfit::safetensors_file f(dir / "model.safetensors");
  auto c = bitfit::load_bert_config(dir);
  c.intermediate_size = 1024;
  try {
    (void)bitfit::load_bert_params<float>(f, c);
    FAIL("expected an error");
  } catch (const bitfit::error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("model.safetensors") != std::string::npos);
    CHECK(msg.find("intermediate.dense") != std::string::npos);
  }
  c = bitfit::load_bert_config(dir);
  c.num_hidden_layers = 7;
  CHECK_THROWS_AS((void)bitfit::load_bert_params<float>(f, c), bitfit::error);
}
