// libFuzzer target: a task patch (.safetensors with bitfit metadata) through bitfit::apply_patch,
// onto a tiny backbone (L=2, H=8, A=2, I=16, the tests' tiny_config) whose backbone id is 64 'a's,
// as in the seeds from fuzz/make_seeds.py.
//
// Applying must succeed or throw bitfit::error. A patch that applies must leave a head that the
// label list can index: one label per output, or no labels and one output (regression); a head
// that disagrees is a finding (abort), since predictions index the label list by class id.
#include <bitfit/train/patch.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

bitfit::bert_config tiny_config() {
  bitfit::bert_config c;
  c.hidden_size = 8, c.num_hidden_layers = 2, c.num_attention_heads = 2, c.intermediate_size = 16;
  c.vocab_size = 50, c.max_position_embeddings = 16, c.type_vocab_size = 2;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static bitfit::bert_params<float> params(tiny_config(), true);
  static const std::string backbone(64, 'a');
  const auto path = bitfit::fuzz::scratch_dir() / "patch.safetensors";
  bitfit::fuzz::write(path, data, size);
  try {
    bitfit::task_head<float> head;
    const auto info = bitfit::apply_patch(path, params, head, backbone);
    const bool consistent = info.labels.empty() ? head.C == 1 : info.labels.size() == std::size_t(head.C);
    if (!consistent || head.C != info.num_labels || head.H != 8 || head.W.size() != std::size_t(head.C) * 8 ||
        head.b.size() != std::size_t(head.C))
      std::abort();
  } catch (const bitfit::error&) {
  }
  return 0;
}
