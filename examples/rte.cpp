// BitFit with two bias terms per layer on RTE: sentence pairs, a small task, the best epoch kept.
//
//   rte MODEL [GLUE_RTE_DIR] [PATCH_OUT] [EPOCHS] [MAX_TRAIN_EXAMPLES]
//   e.g. build/examples/rte models/bert-base-cased-tf ../shared/data/glue/RTE
//
// MODEL may be Google's original TF model, read directly: the SavedModel directory that
// scripts/fetch-model lays out (bert-base-cased-tf, from Maven Central), or a bert_model.ckpt
// prefix beside vocab.txt and bert_config.json; or a Hugging Face directory. Read
// examples/sst2.cpp first; this one differs where RTE does: premise/hypothesis pairs, the
// paper's two-term mask, and the patch of the best dev epoch (RTE's 277 dev pairs make the
// score jump between epochs).
#include <bitfit/bitfit.hpp>

#include <cstdio>
#include <string>

namespace {

// The paper's smallest subset: the query bias bq and the MLP's first bias bm2 (the
// "intermediate" layer) in every layer, 0.04% of BERT-base's parameters. They are the terms
// that change most under full BitFit (its Figure 1), and training just them stays close to
// full BitFit on small tasks (Table 3: RTE 68.6 vs 72.3). A fixed mask is a type: this
// trainer's backward has neither weight gradients nor the other six bias sums.
using mask = bitfit::bitfit_bq_bm2;

/// Class predictions and accuracy of `model` on labelled pairs.
double dev_accuracy(const bitfit::sequence_classifier& model, const std::vector<bitfit::encoded_example>& dev) {
  return bitfit::accuracy(bitfit::predict(model, dev), dev);
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: rte MODEL [GLUE_RTE_DIR] [PATCH_OUT] [EPOCHS] [MAX_TRAIN_EXAMPLES]\n");
    return 2;
  }
  const std::filesystem::path model_path = argv[1];
  const std::filesystem::path data = argc > 2 ? argv[2] : "../shared/data/glue/RTE";
  const std::filesystem::path out = argc > 3 ? argv[3] : "rte-patch.safetensors";
  const int epochs = argc > 4 ? std::stoi(argv[4]) : 6;
  const std::size_t limit = argc > 5 ? std::stoul(argv[5]) : 0;

  // Pairs: [CLS] premise [SEP] hypothesis [SEP], segment ids 0 then 1, cut to 128 tokens
  // together (the longer text loses tokens first, as HF's tokenizer does).
  const auto rte = bitfit::glue_task_named("rte");
  const auto tok = bitfit::load_tokenizer(model_path);
  auto pairs = bitfit::encode_examples(tok, bitfit::read_glue_tsv(data / "train.tsv", rte), rte, 128);
  const auto dev = bitfit::encode_examples(tok, bitfit::read_glue_tsv(data / "dev.tsv", rte), rte, 128);
  if (limit && pairs.size() > limit) pairs.resize(limit);

  auto loaded = bitfit::load_backbone(model_path);
  bitfit::sequence_classifier model{std::move(loaded.params),
                                     bitfit::task_head<float>::init(rte.num_labels(), loaded.params.config.hidden_size, 7)};
  bitfit::train_options options;
  options.learning_rate = 1e-3;  // Table 6: BitFit's best rate on RTE (BERT-base)
  options.batch_size = 16;
  bitfit::trainer<mask> tr(model, options);

  bitfit::patch_info meta;
  meta.task = rte.name, meta.fine_tune_type = "bitfit", meta.backbone_id = loaded.id;
  meta.labels = rte.labels, meta.num_labels = rte.num_labels();
  meta.bias_terms = bitfit::bias_terms_string(bitfit::runtime_mask{mask::bits()});  // "query intermediate"
  std::printf("%zu pairs; training bq and bm2 of %d layers and the head: %zu parameters\n", pairs.size(),
              model.params.config.num_hidden_layers, tr.trained_parameters());

  double best = -1;
  long step = 0;
  const long steps = long((pairs.size() + 15) / 16) * epochs;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto done = bitfit::train_epoch(tr, pairs, epoch, step, steps, [&](const bitfit::step_report& r) {
      std::printf("\repoch %d: %3.0f%%, loss %.4f", epoch, 100.0 * double(r.done) / double(r.total), r.loss);
      std::fflush(stdout);
    });
    const double acc = dev_accuracy(model, dev);
    std::printf(", dev accuracy %.4f, %.0f s%s\n", acc, done.seconds, acc > best ? " (best so far: saved)" : "");
    if (acc > best) best = acc, bitfit::save_patch(out, model.params, tr.trained_entries(), model.head, meta);
  }

  // The saved patch on a fresh backbone gives the best epoch's score (apply_patch checks that the
  // patch was trained on these weights), and labels a pair of our own.
  auto again = bitfit::load_backbone(model_path);
  bitfit::sequence_classifier served{std::move(again.params), {}};
  bitfit::apply_patch(out, served.params, served.head, again.id);
  std::printf("%s: %.0f KiB, dev accuracy %.4f\n", out.c_str(), double(std::filesystem::file_size(out)) / 1024,
              dev_accuracy(served, dev));
  const auto pair = tok.encode_pair("A man is playing a guitar on stage.", "Someone makes music.", 128);
  const auto label = bitfit::predict(served, {{pair.input_ids, pair.token_type_ids}})[0];
  std::printf("\"A man is playing a guitar on stage.\" => \"Someone makes music.\": %s\n",
              rte.labels[std::size_t(label)].c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rte: %s\n", e.what());
    return 1;
  }
}
