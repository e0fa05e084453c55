// libFuzzer target: arbitrary text through a real BERT tokenizer (encode, encode_pair and the
// untruncated token_ids), with the vocabulary of $BITFIT_FUZZ_VOCAB, else
// models/all-MiniLM-L6-v2/vocab.txt (scripts/fuzz runs from the repository root), else a small
// built-in one.
//
// Input: one byte of switches (bit 0: a pair, split at the first tab; bits 1-2: uncased /
// uncased without accent stripping / cased / uncased without CJK splitting), one byte of
// max_length (3..258), then the text. Every id must lie in the vocabulary and every encoding
// within max_length; anything else, or an input slower than libFuzzer's -timeout (a quadratic
// path), is a finding.
#include <bitfit/text/bert_tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace {

/// Special tokens, a few words and continuation pieces: enough to reach every WordPiece path.
std::vector<std::string> builtin_vocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "un", "##aff", "##able", "##ing", "##s",
          "hello", "world", ",", ".", "!", "'", "[", "]", "#", "##", "caf", "##e", "na", "##ive", "\xE4\xB8\xAD",
          "\xE6\x96\x87", "re", "##sum", "Hello", "The", "##\xC3\xA9"};
}

bitfit::wordpiece load_vocab() {
  const char* env = std::getenv("BITFIT_FUZZ_VOCAB");
  const std::filesystem::path path = env && *env ? env : "models/all-MiniLM-L6-v2/vocab.txt";
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return bitfit::wordpiece::from_file(path);
  return bitfit::wordpiece(builtin_vocab());
}

struct tokenizers {
  std::vector<bitfit::bert_tokenizer> by_mode;
  tokenizers() {
    const auto vocab = load_vocab();
    const bitfit::basic_tokenizer_options modes[] = {
        {true, {}, true}, {true, false, true}, {false, {}, true}, {true, {}, false}};
    for (const auto& m : modes) by_mode.emplace_back(vocab, m);
  }
};

void check_ids(const std::vector<std::int32_t>& ids, std::int32_t vocab_size) {
  for (auto id : ids)
    if (id < 0 || id >= vocab_size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tokenizers all;
  if (size < 2) return 0;
  const bool pair = data[0] & 1;
  const auto& tok = all.by_mode[(data[0] >> 1) & 3];
  const int max_length = 3 + data[1];
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::int32_t n = tok.vocabulary().size();
  try {
    if (pair) {
      const auto tab = text.find('\t');
      const auto a = text.substr(0, tab), b = tab == std::string_view::npos ? std::string_view() : text.substr(tab + 1);
      const auto e = tok.encode_pair(a, b, max_length);
      if (e.input_ids.size() > std::size_t(max_length) || e.token_type_ids.size() != e.input_ids.size()) std::abort();
      check_ids(e.input_ids, n);
    } else {
      const auto e = tok.encode(text, max_length);
      if (e.input_ids.size() > std::size_t(max_length) || e.token_type_ids.size() != e.input_ids.size()) std::abort();
      check_ids(e.input_ids, n);
      check_ids(tok.token_ids(text), n);
    }
  } catch (const bitfit::error&) {
    // The tokenizer accepts any bytes (invalid UTF-8 becomes [UNK]); an error is a finding too.
    std::abort();
  }
  return 0;
}
