#pragma once
// `bitfit tokenize` and `bitfit encode`: the inference half of the command-line contract.

#include "options.hpp"

#include <bitfit/bitfit.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace bitfit::cli {

/// Reads UTF-8 lines from stdin (without their line ending).
inline std::vector<std::string> read_lines(std::istream& in) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

/// Tokenizes one input line: a single text, or `first<TAB>second` when `pair`.
inline encoding encode_line(const bert_tokenizer& tok, const std::string& line, bool pair,
                            int max_length, std::size_t line_no) {
  if (!pair) return tok.encode(line, max_length);
  const auto tab = line.find('\t');
  check(tab != std::string::npos, "stdin line " + std::to_string(line_no) + ": --pair expects first<TAB>second");
  return tok.encode_pair(std::string_view(line).substr(0, tab), std::string_view(line).substr(tab + 1), max_length);
}

inline int run_tokenize(int argc, char** argv) {
  options opt("tokenize", "Reads UTF-8 lines on stdin and prints one line of space-separated token ids per input.",
              {{"model", "DIR", "model: Hugging Face directory, TF SavedModel or bert_model.ckpt prefix", "", false, true},
               {"pair", "", "each line is first<TAB>second"},
               {"max-length", "N", "truncate to N tokens, [CLS]/[SEP] included", "512"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const auto tok = load_tokenizer(opt.str("model"));
  const int max_length = int(opt.integer("max-length", opt.has("pair") ? 3 : 2, 1 << 20));
  std::string out;
  std::size_t line_no = 0;
  for (const auto& line : read_lines(std::cin)) {
    const auto enc = encode_line(tok, line, opt.has("pair"), max_length, ++line_no);
    out.clear();
    for (std::size_t i = 0; i < enc.input_ids.size(); ++i) {
      if (i) out += ' ';
      out += std::to_string(enc.input_ids[i]);
    }
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

inline int run_encode(int argc, char** argv) {
  options opt("encode", "Reads UTF-8 lines on stdin and writes their sentence vectors as float32 .npy (N, hidden).",
              {{"model", "DIR", "model: Hugging Face directory, TF SavedModel or bert_model.ckpt prefix", "", false, true},
               {"output", "FILE.npy", "where to write the vectors (atomically)", "", false, true},
               {"pool", "cls|mean|pooler", "sentence vector: [CLS] state, token mean or pooler output", "mean"},
               {"pair", "", "each line is first<TAB>second"},
               {"max-length", "N", "truncate to N tokens", "512"},
               {"batch-size", "N", "sequences per forward pass", "32"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32, or in bf16 (CPUs with AVX512-BF16 or AMX; auto: bf16 where available)", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const std::filesystem::path dir = opt.str("model");
  const auto how = parse_pooling(opt.choice("pool", {"cls", "mean", "pooler"}));
  const auto tok = load_tokenizer(dir);
  const auto params = load_backbone(dir, parse_precision(opt.str("precision"), "--precision"), false).params;
  const int H = params.config.hidden_size;
  const int max_length = int(opt.integer("max-length", opt.has("pair") ? 3 : 2, params.config.max_position_embeddings));
  const int bs = int(opt.integer("batch-size", 1, 4096));
  const auto lines = read_lines(std::cin);
  std::vector<float> out;
  out.reserve(lines.size() * std::size_t(H));
  encoder_state<float> st;
  st.run_pooler = how == pooling::pooler;
  for (std::size_t first = 0; first < lines.size(); first += std::size_t(bs)) {
    token_batch batch;
    for (std::size_t i = first; i < std::min(lines.size(), first + std::size_t(bs)); ++i) {
      const auto enc = encode_line(tok, lines[i], opt.has("pair"), max_length, i + 1);
      batch.add(enc.input_ids, enc.token_type_ids);
    }
    encoder_forward(st, params, batch, no_grad{});
    const auto v = pool(st, batch, H, how);
    out.insert(out.end(), v.begin(), v.end());
  }
  write_npy(opt.str("output"), out, lines.size(), std::size_t(H));
  std::fprintf(stderr, "bitfit encode: %zu vectors of %d floats -> %s\n", lines.size(), H, opt.str("output").c_str());
  return 0;
}

}  // namespace bitfit::cli
