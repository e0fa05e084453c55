// libFuzzer target: a GLUE TSV file through bitfit::read_glue_tsv, read as the file of every task
// (sst2: one sentence; rte, qnli, wnli: a pair; cola: headerless train/dev files; mrpc: a BOM and
// "#1 String"; stsb: a float score). Reading must succeed or throw bitfit::error, and
// every example it returns must carry a label the task can index (-1, or a class id; a score for
// stsb).
#include <bitfit/data/glue.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<bitfit::glue_task> tasks = [] {
    std::vector<bitfit::glue_task> all;
    for (const char* name : {"sst2", "rte", "cola", "mrpc", "stsb", "qnli", "wnli"}) all.push_back(bitfit::glue_task_named(name));
    return all;
  }();
  const auto path = bitfit::fuzz::scratch_dir() / "task.tsv";
  bitfit::fuzz::write(path, data, size);
  for (const auto& task : tasks) {
    try {
      for (const auto& ex : bitfit::read_glue_tsv(path, task))
        if (ex.label < -1 || ex.label >= task.num_labels()) std::abort();
    } catch (const bitfit::error&) {
    }
  }
  return 0;
}
