// One frozen backbone serving many tasks: BitFit's deployment story (Ben-Zaken et al. 2022, §1).
// The backbone's weights are loaded once into a task bank; each task keeps only its bias block and
// its head, and every input line is classified by every task in one mixed-task forward.
//
//   serve_tasks MODEL_DIR PATCH.safetensors [PATCH...] < lines
//
// Each stdin line is a sentence, or "first<TAB>second" for pair tasks; for every line, every task
// prints its prediction: "<line>\t<task>\t<label>". (`bitfit serve` is the same over HTTP.)
#include <bitfit/bitfit.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

int run(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: serve_tasks MODEL_DIR PATCH.safetensors [PATCH...] < lines\n");
    return 2;
  }
  const std::filesystem::path model_dir = argv[1];
  const auto tok = bitfit::load_tokenizer(model_dir);
  auto loaded = bitfit::load_backbone(model_dir);
  bitfit::task_bank bank(std::make_shared<const bitfit::bert_params<float>>(std::move(loaded.params)), loaded.id);

  struct task {
    std::string name;  // in the bank: the patch's file name, so a patch given twice is two tasks
    bool pair = false;  // a sentence-pair task: reads "first<TAB>second"
  };
  std::vector<task> tasks;
  for (int i = 2; i < argc; ++i) {
    const std::string name = std::to_string(i - 2) + ":" + argv[i];
    const auto t = bank.load(name, argv[i]);
    bitfit::glue_task g;
    try {
      g = bitfit::glue_task_named(t->info.task);
    } catch (const bitfit::error& e) {
      throw bitfit::error(std::string(argv[i]) + ": " + e.what());
    }
    // Pair-ness comes from the GLUE task: the patch's head and label list must be its task's.
    bitfit::check(g.num_labels() == t->info.num_labels && g.labels == t->info.labels,
                  std::string(argv[i]) + ": its head has " + std::to_string(t->info.num_labels) +
                      " outputs but task " + g.name + " has " + std::to_string(g.num_labels()));
    std::fprintf(stderr, "serve_tasks: %s (%s, bias terms: %s): %.0f KiB per task\n", argv[i], t->info.task.c_str(),
                 t->info.bias_terms.c_str(),
                 double((t->biases.biases().size() + t->head.W.size() + t->head.b.size()) * 4) / 1024);
    tasks.push_back({name, g.pair()});
  }

  bitfit::encoder_state<float> st;  // reused by every forward: no allocation per line
  std::string line;
  for (int n = 0; std::getline(std::cin, line); ++n) {
    // Tokenized once per line: as one sentence, and as a pair when it has a tab.
    const auto tab = line.find('\t');
    const auto single = tok.encode(line, 128);
    const auto pair = tab == std::string::npos ? single : tok.encode_pair(line.substr(0, tab), line.substr(tab + 1), 128);
    std::vector<bitfit::task_input> xs;
    for (const auto& t : tasks) {
      const auto& e = t.pair ? pair : single;
      xs.push_back({t.name, e.input_ids, e.token_type_ids});
    }
    for (const auto& o : bank.classify(xs, st)) {  // one forward, every task, in input order
      const auto& info = o.task->info;
      std::string label;
      if (info.labels.empty()) {
        label = std::to_string(o.logits[0]);
      } else {  // the first largest logit, as bitfit predict chooses
        const auto best = std::max_element(o.logits.begin(), o.logits.end()) - o.logits.begin();
        label = info.labels[std::size_t(best)];
      }
      std::printf("%d\t%s\t%s\n", n, info.task.c_str(), label.c_str());
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
