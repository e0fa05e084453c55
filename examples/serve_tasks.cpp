// One frozen backbone serving many tasks: BitFit's deployment story (Ben-Zaken et al. 2022, §1).
// The backbone's weights are loaded once; each task keeps only its bias block and its head, and
// switching task is a copy of those few hundred kilobytes.
//
//   serve_tasks MODEL_DIR PATCH.safetensors [PATCH...] < lines
//
// Each stdin line is a sentence, or "first<TAB>second" for pair tasks; for every line, every task
// prints its prediction: "<line>\t<task>\t<label>".
#include <bitfit/bitfit.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

/// What one task adds to the shared backbone.
struct task {
  bitfit::patch_info info;
  bool pair = false;          // a sentence-pair task: reads "first<TAB>second"
  std::vector<float> biases;  // (bias_size): every bias term, trained or not
  bitfit::task_head<float> head;
};

int run(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: serve_tasks MODEL_DIR PATCH.safetensors [PATCH...] < lines\n");
    return 2;
  }
  const std::filesystem::path model_dir = argv[1];
  const auto tok = bitfit::load_tokenizer(model_dir);
  bitfit::sequence_classifier model{bitfit::load_bert_params<float>(model_dir), {}};
  const auto backbone = bitfit::backbone_id(model.params);
  const auto pretrained = model.params.biases();
  const std::vector<float> base(pretrained.begin(), pretrained.end());

  std::vector<task> tasks;
  for (int i = 2; i < argc; ++i) {
    task t;
    t.info = bitfit::apply_patch(argv[i], model.params, t.head, backbone);
    bitfit::check(t.info.kind == "bias", std::string(argv[i]) + ": a full checkpoint, not a bias patch");
    bitfit::glue_task g;
    try {
      g = bitfit::glue_task_named(t.info.task);
    } catch (const bitfit::error& e) {
      throw bitfit::error(std::string(argv[i]) + ": " + e.what());
    }
    // Labels are printed by the head's class id: the patch's head and label list must be its task's.
    bitfit::check(g.num_labels() == t.info.num_labels && g.labels == t.info.labels,
                  std::string(argv[i]) + ": its head has " + std::to_string(t.info.num_labels) +
                      " outputs but task " + g.name + " has " + std::to_string(g.num_labels()));
    t.pair = g.pair();
    const auto b = model.params.biases();
    t.biases.assign(b.begin(), b.end());
    std::copy(base.begin(), base.end(), b.begin());  // back to the pretrained biases
    std::fprintf(stderr, "serve_tasks: %s (%s, bias terms: %s): %.0f KiB per task\n", argv[i], t.info.task.c_str(),
                 t.info.bias_terms.c_str(), double((t.biases.size() + t.head.W.size() + t.head.b.size()) * 4) / 1024);
    tasks.push_back(std::move(t));
  }

  auto example = [](const bitfit::encoding& e) { return bitfit::encoded_example{e.input_ids, e.token_type_ids}; };
  bitfit::encoder_state<float> st;  // reused by every prediction: no allocation per line
  std::string line;
  for (int n = 0; std::getline(std::cin, line); ++n) {
    // Tokenized once per line: as one sentence, and as a pair when it has a tab.
    const auto tab = line.find('\t');
    const auto single = example(tok.encode(line, 128));
    const auto pair = tab == std::string::npos ? single
                                               : example(tok.encode_pair(line.substr(0, tab), line.substr(tab + 1), 128));
    for (const auto& t : tasks) {
      std::copy(t.biases.begin(), t.biases.end(), model.params.biases().begin());
      model.head = t.head;
      const auto& x = t.pair ? pair : single;
      const float y = bitfit::predict(model, {x}, st)[0];  // a class id (argmax) or a regression value
      const bool is_class = !t.info.labels.empty();
      bitfit::check(!is_class || (y >= 0 && y < float(t.info.labels.size())),
                    t.info.task + ": prediction " + std::to_string(y) + " is not a class id");
      const std::string label = is_class ? t.info.labels[std::size_t(y)] : std::to_string(y);
      std::printf("%d\t%s\t%s\n", n, t.info.task.c_str(), label.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_tasks: %s\n", e.what());
    return 1;
  }
}
