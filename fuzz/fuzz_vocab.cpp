// libFuzzer target: a tokenizer directory through bitfit::bert_tokenizer::from_dir.
//
// Input: tokenizer_config.json, a NUL byte, vocab.txt. Without a NUL the whole input is vocab.txt
// and there is no tokenizer_config.json (the Hugging Face defaults apply). Loading must succeed
// or throw bitfit::error; a tokenizer that loads then encodes a few fixed texts (special tokens,
// continuation pieces, accents, CJK), whose ids must all lie in the vocabulary.
#include <bitfit/text/bert_tokenizer.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check_ids(const bitfit::encoding& e, std::int32_t vocab_size, std::size_t max_length) {
  if (e.input_ids.size() > max_length || e.token_type_ids.size() != e.input_ids.size()) std::abort();
  for (auto id : e.input_ids)
    if (id < 0 || id >= vocab_size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = bitfit::fuzz::as_text(data, size);
  const auto& dir = bitfit::fuzz::scratch_dir();
  const auto nul = input.find('\0');
  std::error_code ec;
  std::filesystem::remove(dir / "tokenizer_config.json", ec);
  if (nul != std::string_view::npos) bitfit::fuzz::write(dir / "tokenizer_config.json", input.substr(0, nul));
  bitfit::fuzz::write(dir / "vocab.txt", nul == std::string_view::npos ? input : input.substr(nul + 1));
  try {
    const auto tok = bitfit::bert_tokenizer::from_dir(dir);
    const std::int32_t n = tok.vocabulary().size();
    for (std::string_view text : {"Hello, [SEP] world! ##ing [MASK] [UNK]", "na\xC3\xAFve caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87",
                                  "", "unaffable\tre\xCC\x81sume\xCC\x81"}) {
      check_ids(tok.encode(text, 16), n, 16);
      check_ids(tok.encode_pair(text, "a [SEP] b", 16), n, 16);
    }
  } catch (const bitfit::error&) {
  }
  return 0;
}
