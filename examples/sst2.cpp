// BitFit on SST-2 with the library alone: the first program to read.
//
//   sst2 MODEL_DIR GLUE_SST2_DIR [PATCH_OUT] [MAX_TRAIN_EXAMPLES] [EPOCHS]
//   e.g. build/examples/sst2 models/bert-base-uncased ../shared/data/glue/SST-2 sst2-patch.safetensors
//
// It loads a BERT (a Hugging Face directory, a TF SavedModel or a Google bert_model.ckpt prefix:
// the same call), freezes every weight and trains only the bias terms and a classification head
// (Ben-Zaken et al. 2022), scores dev after each epoch, saves the patch (a few hundred KB), then
// reloads the patch onto a fresh copy of the backbone and classifies two sentences.
#include <bitfit/bitfit.hpp>

#include <cstdio>
#include <string>

namespace {

int run(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sst2 MODEL_DIR GLUE_SST2_DIR [PATCH_OUT] [MAX_TRAIN_EXAMPLES] [EPOCHS]\n");
    return 2;
  }
  const std::filesystem::path model_dir = argv[1], data = argv[2];
  const std::filesystem::path patch = argc > 3 ? argv[3] : "sst2-patch.safetensors";
  const std::size_t limit = argc > 4 ? std::stoul(argv[4]) : 0;  // 0: all 67,349 sentences
  const int epochs = argc > 5 ? std::stoi(argv[5]) : 1;

  // The task: single sentences, labels "0" (negative) and "1" (positive).
  const auto task = bitfit::glue_task_named("sst2");
  const auto tok = bitfit::load_tokenizer(model_dir);
  auto train = bitfit::encode_examples(tok, bitfit::read_glue_tsv(data / "train.tsv", task), task, 128);
  const auto dev = bitfit::encode_examples(tok, bitfit::read_glue_tsv(data / "dev.tsv", task), task, 128);
  if (limit && train.size() > limit) train.resize(limit);

  // The backbone (its identity ties the patch to these exact weights) and a fresh head.
  auto backbone = bitfit::load_backbone(model_dir);
  bitfit::sequence_classifier model{std::move(backbone.params), {}};
  model.head = bitfit::task_head<float>::init(task.num_labels(), model.params.config.hidden_size, 42);

  // Every bias term: SST-2 is a medium-sized task, where the paper's full BitFit (0.08% of the
  // parameters) matches full fine-tuning (Table 2). The mask is a compile-time policy, so this
  // trainer's backward contains no weight-gradient code at all.
  bitfit::train_options opt;
  opt.learning_rate = 1e-3;  // bias terms want a larger rate than full fine-tuning's 2e-5 (Table 6)
  opt.batch_size = 16;
  bitfit::trainer<bitfit::bitfit_all> trainer(model, opt);
  std::printf("training %zu bias parameters and the head on %zu sentences\n", trainer.trained_parameters(), train.size());

  const long total = long((train.size() + 15) / 16) * epochs;
  long step = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto r = bitfit::train_epoch(trainer, train, epoch, step, total, [](const bitfit::step_report& at) {
      if (at.step % 50 == 0) std::printf("\r  %zu/%zu sentences, loss %.4f, %.0f tokens/s", at.done, at.total, at.loss, at.tokens_per_s);
      std::fflush(stdout);
    });
    const double acc = bitfit::accuracy(bitfit::predict(model, dev), dev);
    std::printf("\nepoch %d: dev accuracy %.4f (%zu sentences), %.0f s\n", epoch, acc, dev.size(), r.seconds);
  }

  // The patch: the trained bias tensors and the head, with the task's metadata.
  bitfit::patch_info info;
  info.task = task.name, info.fine_tune_type = "bitfit", info.labels = task.labels, info.num_labels = task.num_labels();
  info.bias_terms = bitfit::bias_terms_string(bitfit::runtime_mask{bitfit::bitfit_all::bits()});
  info.backbone_id = backbone.id;
  bitfit::save_patch(patch, model.params, trainer.trained_entries(), model.head, info);
  std::printf("wrote %s (%.0f KiB)\n", patch.c_str(), double(std::filesystem::file_size(patch)) / 1024);

  // Serving: a fresh backbone, the patch applied (refused if it was trained on other weights).
  auto fresh = bitfit::load_backbone(model_dir);
  bitfit::sequence_classifier served{std::move(fresh.params), {}};
  bitfit::apply_patch(patch, served.params, served.head, fresh.id);
  for (const std::string s : {"a gripping, funny and deeply moving film .", "the plot is thin and the jokes fall flat"}) {
    const auto enc = tok.encode(s, 128);
    const float y = bitfit::predict(served, {{enc.input_ids, enc.token_type_ids}})[0];
    std::printf("%s -> %s\n", s.c_str(), y == 1.0f ? "positive" : "negative");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sst2: %s\n", e.what());
    return 1;
  }
}
