#pragma once
// `bitfit convert`: any supported checkpoint (HF directory, TF SavedModel, Google bert_model.ckpt)
// to a standard Hugging Face directory. `bitfit merge`: a backbone and a patch as one standalone
// Hugging Face BertForSequenceClassification directory.

#include "commands_train.hpp"
#include "options.hpp"

#include <bitfit/bitfit.hpp>

#include <cstdio>

namespace bitfit::cli {

inline int run_convert(int argc, char** argv) {
  options opt("convert", "Writes a BERT (HF directory, TF SavedModel or bert_model.ckpt prefix) as a Hugging Face "
                         "directory: config.json, vocab.txt, tokenizer_config.json, model.safetensors.",
              {{"model", "SRC", "the model to convert", "", false, true},
               {"output", "DIR", "the HF directory to create (must not exist, or be empty)", "", false, true},
               {"hidden-act", "NAME", "hidden_act for config.json: gelu (erf, HF's reading of Google's BERT), "
                                      "gelu_new (tanh, Google's original graph); default: the source's"},
               {"mlm-head", "", "also write the masked-LM head (a BertForMaskedLM checkpoint; HF then skips the pooler)"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  convert_options o;
  if (opt.has("hidden-act")) o.hidden_act = opt.choice("hidden-act", {"gelu", "gelu_new", "gelu_pytorch_tanh"});
  o.mlm_head = opt.has("mlm-head");
  convert_to_hf(opt.str("model"), opt.str("output"), o);
  std::fprintf(stderr, "bitfit convert: %s -> %s\n", opt.str("model").c_str(), opt.str("output").c_str());
  return 0;
}

inline int run_merge(int argc, char** argv) {
  options opt("merge", "Writes a backbone with a patch applied as a standalone Hugging Face BertForSequenceClassification "
                       "directory, or BertForTokenClassification for a POS patch (patched biases, classifier, labels "
                       "in config.json).",
              {{"-m,--model-name,--model", "DIR|NAME", "the backbone the patch was trained on", "", false, true},
               {"patch", "FILE", "patch.safetensors (or a full checkpoint) from bitfit train", "", false, true},
               {"output", "DIR", "the HF directory to create (must not exist, or be empty)", "", false, true}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const auto info = merge_to_hf(resolve_model(opt.str("model-name")), opt.str("patch"), opt.str("output"));
  std::fprintf(stderr, "bitfit merge: %s (%s, %s) -> %s\n", opt.str("patch").c_str(), info.task.c_str(),
               info.fine_tune_type.c_str(), opt.str("output").c_str());
  return 0;
}

}  // namespace bitfit::cli
