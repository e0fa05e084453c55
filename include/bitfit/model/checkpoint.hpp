#pragma once
/// @file checkpoint.hpp
/// Loading a Hugging Face BERT checkpoint (config.json + model.safetensors) into bert_params.

#include <bitfit/io/safetensors.hpp>
#include <bitfit/model/config.hpp>
#include <bitfit/model/params.hpp>

#include <filesystem>

namespace bitfit {

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

/// A model directory: config.json + model.safetensors (+ the tokenizer files, read elsewhere).
template <class T>
bert_params<T> load_bert_params(const std::filesystem::path& model_dir) {
  const bert_config c = load_bert_config(model_dir);
  const auto weights = model_dir / "model.safetensors";
  check(std::filesystem::exists(weights), weights.string() + ": not found (run scripts/fetch-model?)");
  safetensors_file file(weights);
  return load_bert_params<T>(file, c);
}

}  // namespace bitfit
