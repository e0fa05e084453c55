// libFuzzer target: config.json through bitfit::bert_config_from_json (on the bytes parsed by
// nlohmann, without a depth bound: the function must cope with any JSON value) and through
// bitfit::load_bert_config (the file as the loaders read it: parse_json_file, size and depth
// bounds). Each must return a validated config or throw bitfit::error.
#include <bitfit/model/config.hpp>

#include "fuzz_support.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace {

/// What validate() promises about a config it accepted.
void check_accepted(const bitfit::bert_config& c) {
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0 ||
      c.num_hidden_layers <= 0 || c.intermediate_size <= 0 || c.vocab_size <= 0)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = bitfit::fuzz::as_text(data, size);
  const auto parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded()) {
    try {
      check_accepted(bitfit::bert_config_from_json(parsed, "fuzz"));
    } catch (const bitfit::error&) {
    }
  }
  const auto path = bitfit::fuzz::scratch_dir() / "config.json";
  bitfit::fuzz::write(path, data, size);
  try {
    check_accepted(bitfit::load_bert_config(path));
  } catch (const bitfit::error&) {
  }
  return 0;
}
