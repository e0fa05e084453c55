// The `bitfit` command-line tool. A stable contract for scripts: every error is one line on
// stderr and a non-zero exit status.

#include "commands_infer.hpp"
#include "commands_model.hpp"
#include "commands_plot.hpp"
#include "commands_serve.hpp"
#include "commands_train.hpp"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

namespace {

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: bitfit <command> [options]   (bitfit <command> --help for its options)\n\n"
               "commands:\n"
               "  tokenize   print the token ids of each stdin line\n"
               "  encode     write sentence vectors of stdin lines to a .npy file\n"
               "  train      fine-tune a bias patch (or a full model) on a GLUE task\n"
               "  evaluate   re-score a saved patch on a GLUE split\n"
               "  predict    apply a patch and predict a GLUE-format TSV\n"
               "  serve      serve patches of many tasks over one backbone (HTTP + JSON)\n"
               "  merge      write backbone + patch as a standalone Hugging Face classifier (or tagger)\n"
               "  plot       learning curves, bias change per term and layer, results bars (SVG + PNG)\n"
               "  convert    write a TF or HF BERT checkpoint as a Hugging Face directory\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  try {
    bitfit::require_compiled_isa();
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      usage(stdout);
      return 0;
    }
    if (cmd == "tokenize") return bitfit::cli::run_tokenize(argc, argv);
    if (cmd == "encode") return bitfit::cli::run_encode(argc, argv);
    if (cmd == "train") return bitfit::cli::run_train(argc, argv);
    if (cmd == "evaluate") return bitfit::cli::run_evaluate(argc, argv);
    if (cmd == "predict") return bitfit::cli::run_predict(argc, argv);
    if (cmd == "serve") return bitfit::cli::run_serve(argc, argv);
    if (cmd == "merge") return bitfit::cli::run_merge(argc, argv);
    if (cmd == "plot") return bitfit::cli::run_plot(argc, argv);
    if (cmd == "convert") return bitfit::cli::run_convert(argc, argv);
    std::fprintf(stderr, "bitfit: unknown command '%s' (see bitfit --help)\n", argv[1]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s%s\n", std::strncmp(e.what(), "bitfit", 6) == 0 ? "" : "bitfit: ", e.what());
    return 1;
  }
}
