#pragma once
/// @file params.hpp
/// BERT parameters in one flat buffer with named views in the paper's notation.
///
/// Layout: [ bias block | weight block | GEMM block ]. Every bias term of the model (the BitFit
/// set) comes first, so a bias-only gradient, optimizer state or patch is one small contiguous
/// span, and a gradient buffer for a bias-only policy simply has no weight block. The encoder
/// layers' matrices (W_q, W_k, W_v, W_m1, W_m2, W_m3: 77% of BERT-base) come last, so that a
/// backbone whose frozen matrices are stored in bf16 (store_weights_bf16()) can drop their fp32
/// copy by truncating the buffer. Within a layer q, k, v are adjacent, so W_qkv (3H, H) and b_qkv
/// (3H) are single views and Q, K, V come out of one GEMM. Entries keep the HF order whatever
/// their offsets, so the order of `entries` (and backbone_id()) does not depend on the storage.

#include <bitfit/core/buffer.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/model/config.hpp>
#include <bitfit/ops/gemm.hpp>
#include <bitfit/train/mask.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace bitfit {

/// One tensor of the model: its Hugging Face name (without "bert."), shape and place.
struct param_entry {
  std::string name;
  std::vector<std::int64_t> shape;
  std::size_t offset = 0;  ///< in elements, into the flat buffer
  std::size_t numel = 0;
  bool is_bias = false;    ///< in the bias block (trainable by BitFit)
  bool is_gemm = false;    ///< an encoder layer's matrix, in the GEMM block
  int layer = -1;          ///< encoder layer, or -1
  term bias_term = term::bq;  ///< which term, when is_bias
};

/// Offsets of every tensor for a config. Deterministic: the same config gives the same layout.
struct param_layout {
  std::vector<param_entry> entries;
  std::size_t bias_size = 0;   ///< elements in the bias block
  std::size_t gemm_offset = 0; ///< where the GEMM block starts (bias + weight blocks before it)
  std::size_t total_size = 0;  ///< all three blocks

  explicit param_layout(const bert_config& c) {
    const std::int64_t H = c.hidden_size, I = c.intermediate_size;
    auto add = [&](std::string name, std::vector<std::int64_t> shape, bool bias, int layer, term t,
                   bool gemm = false) {
      std::size_t n = 1;
      for (auto d : shape) n *= std::size_t(d);
      entries.push_back({std::move(name), std::move(shape), 0, n, bias, gemm, layer, t});
    };
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      add(p + "attention.self.query.bias", {H}, true, l, term::bq);
      add(p + "attention.self.key.bias", {H}, true, l, term::bk);
      add(p + "attention.self.value.bias", {H}, true, l, term::bv);
      add(p + "attention.output.dense.bias", {H}, true, l, term::bm1);
      add(p + "attention.output.LayerNorm.bias", {H}, true, l, term::bLN1);
      add(p + "intermediate.dense.bias", {I}, true, l, term::bm2);
      add(p + "output.dense.bias", {H}, true, l, term::bm3);
      add(p + "output.LayerNorm.bias", {H}, true, l, term::bLN2);
    }
    add("embeddings.LayerNorm.bias", {H}, true, -1, term::emb_bLN);
    add("pooler.dense.bias", {H}, true, -1, term::pooler_b);
    add("embeddings.word_embeddings.weight", {c.vocab_size, H}, false, -1, term::bq);
    add("embeddings.position_embeddings.weight", {c.max_position_embeddings, H}, false, -1, term::bq);
    add("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H}, false, -1, term::bq);
    add("embeddings.LayerNorm.weight", {H}, false, -1, term::bq);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      add(p + "attention.self.query.weight", {H, H}, false, l, term::bq, true);
      add(p + "attention.self.key.weight", {H, H}, false, l, term::bq, true);
      add(p + "attention.self.value.weight", {H, H}, false, l, term::bq, true);
      add(p + "attention.output.dense.weight", {H, H}, false, l, term::bq, true);
      add(p + "attention.output.LayerNorm.weight", {H}, false, l, term::bq);
      add(p + "intermediate.dense.weight", {I, H}, false, l, term::bq, true);
      add(p + "output.dense.weight", {H, I}, false, l, term::bq, true);
      add(p + "output.LayerNorm.weight", {H}, false, l, term::bq);
    }
    add("pooler.dense.weight", {H, H}, false, -1, term::bq);
    // Offsets block by block: biases, other weights, GEMM matrices (each block in HF order).
    for (auto block : {0, 1, 2}) {
      for (auto& e : entries) {
        if ((e.is_bias ? 0 : e.is_gemm ? 2 : 1) != block) continue;
        e.offset = total_size;
        total_size += e.numel;
      }
      if (block == 0) bias_size = total_size;
      if (block == 1) gemm_offset = total_size;
    }
  }

  /// The entry named `name` (HF name, "bert." prefix allowed), or null if there is none.
  const param_entry* lookup(std::string_view name) const noexcept {
    if (name.starts_with("bert.")) name.remove_prefix(5);
    for (const auto& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  }
  /// The entry named `name`; throws if unknown.
  const param_entry& find(std::string_view name) const {
    if (const param_entry* e = lookup(name)) return *e;
    throw error("unknown BERT parameter '" + std::string(name) + "'");
  }
};

/// Views of one encoder layer. Shapes: H hidden, I intermediate; weights are (out, in). When the
/// backbone keeps its matrices in bf16, W* are null and W*16 hold them.
template <class T>
struct layer_params {
  T* Wqkv = nullptr;  // (3H, H)  rows: query, key, value
  T* bqkv = nullptr;  // (3H)     bq | bk | bv
  T* Wm1 = nullptr;   // (H, H)   attention.output.dense
  T* bm1 = nullptr;   // (H)
  T* gLN1 = nullptr;  // (H)      attention.output.LayerNorm.weight
  T* bLN1 = nullptr;  // (H)
  T* Wm2 = nullptr;   // (I, H)   intermediate.dense
  T* bm2 = nullptr;   // (I)
  T* Wm3 = nullptr;   // (H, I)   output.dense
  T* bm3 = nullptr;   // (H)
  T* gLN2 = nullptr;  // (H)      output.LayerNorm.weight
  T* bLN2 = nullptr;  // (H)
  const bf16* Wqkv16 = nullptr;  // (3H, H)  bf16 copies of the frozen matrices, or null
  const bf16* Wm116 = nullptr;   // (H, H)
  const bf16* Wm216 = nullptr;   // (I, H)
  const bf16* Wm316 = nullptr;   // (H, I)
  int H = 0;

  T* bq() const { return bqkv; }
  T* bk() const { return bqkv + H; }
  T* bv() const { return bqkv + 2 * H; }
  /// The view of a per-layer bias term.
  T* bias(term t) const {
    switch (t) {
      case term::bq: return bq();
      case term::bk: return bk();
      case term::bv: return bv();
      case term::bm1: return bm1;
      case term::bLN1: return bLN1;
      case term::bm2: return bm2;
      case term::bm3: return bm3;
      case term::bLN2: return bLN2;
      default: throw error("bias term " + std::string(term_name(t)) + " is not a layer term");
    }
  }
};

/// All parameters of a BERT encoder (or a gradient of the same shape) in one flat buffer.
/// A gradient for a bias-only policy has only the bias block: its weight views are null.
template <class T>
struct bert_params {
  bert_config config;
  param_layout layout;
  buffer<T> data;  // (bias_size), (total_size), or (gemm_offset) when the GEMM block is in bf16
  bool has_weights = false;
  std::shared_ptr<const buffer<bf16>> gemm16;  // (total_size - gemm_offset) or null; read-only, shared

  T* word = nullptr;      // (V, H)
  T* pos = nullptr;       // (P, H)
  T* type = nullptr;      // (type_vocab, H)
  T* emb_gLN = nullptr;   // (H)
  T* emb_bLN = nullptr;   // (H)
  std::vector<layer_params<T>> layers;  // L
  T* pooler_W = nullptr;  // (H, H)
  T* pooler_b = nullptr;  // (H)

  /// Zero-filled parameters (with_weights) or a bias-block-only buffer (a bias-only gradient).
  bert_params(const bert_config& c, bool with_weights)
      : config(c), layout(c), data(with_weights ? layout.total_size : layout.bias_size, T(0)),
        has_weights(with_weights) {
    bind();
  }
  bert_params(const bert_params& o)
      : config(o.config), layout(o.layout), data(o.data), has_weights(o.has_weights), gemm16(o.gemm16) {
    bind();
  }
  bert_params& operator=(const bert_params& o) {
    config = o.config, layout = o.layout, data = o.data, has_weights = o.has_weights, gemm16 = o.gemm16;
    bind();
    return *this;
  }
  bert_params(bert_params&& o) noexcept = default;  // vector moves keep the buffer: views stay valid
  bert_params& operator=(bert_params&&) noexcept = default;

  /// The bias block: every bias term of the model.
  std::span<T> biases() { return {data.data(), layout.bias_size}; }
  std::span<const T> biases() const { return {data.data(), layout.bias_size}; }
  /// Precision of the encoder layers' matrices.
  precision weight_precision() const { return gemm16 ? precision::bf16 : precision::fp32; }

  /// Stores the encoder layers' matrices in bf16 for good and frees their fp32 copy (BitFit never
  /// updates them). Irreversible; take backbone_id() first, it hashes the fp32 values.
  void store_weights_bf16() {
    check(has_weights && !gemm16, "store_weights_bf16: needs fp32 weights");
    if constexpr (std::is_same_v<T, float>) {
      auto w = std::make_shared<buffer<bf16>>(layout.total_size - layout.gemm_offset);
      convert_to_bf16(w->data(), data.data() + layout.gemm_offset, w->size());
      gemm16 = std::move(w);
      data.resize(layout.gemm_offset);
      data.shrink_to_fit();
      bind();
    } else {
      throw error("store_weights_bf16: only float parameters have a bf16 form");
    }
  }

  /// A tensor by HF name; throws if it is a weight and this buffer has none (in fp32).
  std::span<T> tensor(const param_entry& e) {
    check(e.is_bias || has_weights, "parameter '" + e.name + "' has no storage in a bias-only buffer");
    check(!e.is_gemm || !gemm16, "parameter '" + e.name + "' is stored in bf16 only (store_weights_bf16)");
    return {data.data() + e.offset, e.numel};
  }
  std::span<const T> tensor(const param_entry& e) const {
    return const_cast<bert_params*>(this)->tensor(e);
  }
  /// The view of term `t` in layer `l` (l ignored for emb_bLN and pooler_b).
  T* bias(term t, int l) const {
    if (t == term::emb_bLN) return emb_bLN;
    if (t == term::pooler_b) return pooler_b;
    return layers[std::size_t(l)].bias(t);
  }

 private:
  void bind() {
    const int L = config.num_hidden_layers, H = config.hidden_size;
    layers.assign(std::size_t(L), layer_params<T>{});
    T* base = data.data();
    auto at = [&](const std::string& name, bool weight) -> T* {
      const param_entry& e = layout.find(name);
      return (weight && !has_weights) || (e.is_gemm && gemm16) ? nullptr : base + e.offset;
    };
    auto at16 = [&](const std::string& name) -> const bf16* {
      return gemm16 ? gemm16->data() + (layout.find(name).offset - layout.gemm_offset) : nullptr;
    };
    for (int l = 0; l < L; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      auto& lp = layers[std::size_t(l)];
      lp.H = H;
      lp.bqkv = at(p + "attention.self.query.bias", false);
      lp.bm1 = at(p + "attention.output.dense.bias", false);
      lp.bLN1 = at(p + "attention.output.LayerNorm.bias", false);
      lp.bm2 = at(p + "intermediate.dense.bias", false);
      lp.bm3 = at(p + "output.dense.bias", false);
      lp.bLN2 = at(p + "output.LayerNorm.bias", false);
      lp.Wqkv = at(p + "attention.self.query.weight", true);
      lp.Wm1 = at(p + "attention.output.dense.weight", true);
      lp.gLN1 = at(p + "attention.output.LayerNorm.weight", true);
      lp.Wm2 = at(p + "intermediate.dense.weight", true);
      lp.Wm3 = at(p + "output.dense.weight", true);
      lp.gLN2 = at(p + "output.LayerNorm.weight", true);
      lp.Wqkv16 = at16(p + "attention.self.query.weight");
      lp.Wm116 = at16(p + "attention.output.dense.weight");
      lp.Wm216 = at16(p + "intermediate.dense.weight");
      lp.Wm316 = at16(p + "output.dense.weight");
    }
    emb_bLN = at("embeddings.LayerNorm.bias", false);
    pooler_b = at("pooler.dense.bias", false);
    word = at("embeddings.word_embeddings.weight", true);
    pos = at("embeddings.position_embeddings.weight", true);
    type = at("embeddings.token_type_embeddings.weight", true);
    emb_gLN = at("embeddings.LayerNorm.weight", true);
    pooler_W = at("pooler.dense.weight", true);
  }
};

}  // namespace bitfit
