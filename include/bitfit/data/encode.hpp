#pragma once
/// @file encode.hpp
/// GLUE examples to token ids with the model's tokenizer (single sentences or pairs).

#include <bitfit/data/examples.hpp>
#include <bitfit/data/glue.hpp>
#include <bitfit/text/bert_tokenizer.hpp>

#include <vector>

namespace bitfit {

/// Tokenizes every example (in parallel; the output keeps the input order).
inline std::vector<encoded_example> encode_examples(const bert_tokenizer& tok, const std::vector<glue_example>& xs,
                                                    const glue_task& task, int max_length) {
  std::vector<encoded_example> out(xs.size());
#pragma omp parallel for schedule(dynamic, 256)
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto enc = task.pair() ? tok.encode_pair(xs[i].a, xs[i].b, max_length) : tok.encode(xs[i].a, max_length);
    out[i] = {enc.input_ids, enc.token_type_ids, xs[i].label, xs[i].score};
  }
  return out;
}

}  // namespace bitfit
