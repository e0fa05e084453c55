// libFuzzer target: a CoNLL-U file through bitfit::parse_conllu, then what token classification
// does with it: the UPOS and XPOS tag sets, each sentence's tag ids, bert_tokenizer::encode_words
// on its FORMs and first_subtoken_labels. Parsing must succeed or throw bitfit::error; after a
// successful parse nothing may throw. Checked invariants (abort otherwise): every sentence has
// words, with non-empty FORM/UPOS/XPOS and increasing line numbers; every tag id is in its set;
// an encoding fits max_length, keeps a prefix of whole words whose ids are exactly each word's
// token_ids, and drops the rest only because the next word does not fit.
//
// The tokenizer has MiniLM's vocabulary ($BITFIT_FUZZ_VOCAB, else models/all-MiniLM-L6-v2/vocab.txt,
// as fuzz_tokenizer; scripts/fuzz runs from the repository root), else a few built-in tokens.
#include <bitfit/data/conllu.hpp>
#include <bitfit/data/token_labels.hpp>
#include <bitfit/text/bert_tokenizer.hpp>

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

bitfit::bert_tokenizer load_tokenizer() {
  const char* env = std::getenv("BITFIT_FUZZ_VOCAB");
  const std::filesystem::path path = env && *env ? env : "models/all-MiniLM-L6-v2/vocab.txt";
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return bitfit::bert_tokenizer(bitfit::wordpiece::from_file(path));
  return bitfit::bert_tokenizer(bitfit::wordpiece(std::vector<std::string>{
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "un", "##aff", "##able", "##s", "'", "n", "##'", "##t", ".", "_"}));
}

void require(bool ok) {
  if (!ok) std::abort();
}

/// encode_words of `words` at `max_length` against the words' own token_ids.
void check_encoding(const bitfit::bert_tokenizer& tok, const std::vector<std::string>& words,
                    const std::vector<std::int32_t>& labels, int max_length) {
  const auto e = tok.encode_words(words, max_length);
  const std::size_t n = e.input_ids.size();
  require(n >= 2 && n <= std::size_t(max_length) && e.word_ids.size() == n && e.token_type_ids.size() == n);
  require(e.input_ids.front() == tok.cls_id() && e.input_ids.back() == tok.sep_id());
  require(e.word_ids.front() == -1 && e.word_ids.back() == -1);
  require(e.words_kept + e.truncated_words == words.size());
  std::size_t t = 1;
  for (std::size_t w = 0; w < e.words_kept; ++w)
    for (const std::int32_t id : tok.token_ids(words[w])) {
      require(t < n - 1 && e.input_ids[t] == id && e.word_ids[t] == std::int32_t(w));
      ++t;
    }
  require(t == n - 1);
  if (e.truncated_words > 0) require(tok.token_ids(words[e.words_kept]).size() > std::size_t(max_length) - n);
  const auto token_labels = bitfit::first_subtoken_labels(e.word_ids, labels);
  require(token_labels.size() == n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bitfit::bert_tokenizer tok = load_tokenizer();
  std::vector<bitfit::conllu_sentence> sentences;
  try {
    sentences = bitfit::parse_conllu(bitfit::fuzz::as_text(data, size), "fuzz.conllu");
  } catch (const bitfit::error&) {
    return 0;
  }
  std::size_t last_line = 0;
  for (const auto& s : sentences) {
    require(!s.words.empty() && s.line > last_line);
    for (const auto& w : s.words) {
      require(w.line >= s.line && w.line > last_line);
      require(!w.form.empty() && !w.upos.empty() && !w.xpos.empty());
      last_line = w.line;
    }
  }
  if (sentences.empty()) return 0;
  // Nothing below may throw: the tags come from these very sentences.
  try {
    const int max_length = 2 + int(size % 40);
    for (const auto column : {bitfit::tag_column::upos, bitfit::tag_column::xpos}) {
      const auto set = bitfit::make_tag_set(sentences, column);
      for (const auto& s : sentences) {
        const auto labels = set.word_labels(s, "fuzz.conllu");
        require(labels.size() == s.words.size());
        for (std::size_t w = 0; w < labels.size(); ++w)
          require(labels[w] >= 0 && labels[w] < set.size() && set.tags[std::size_t(labels[w])] == set.tag_of(s.words[w]));
        if (column == bitfit::tag_column::upos) {
          const auto forms = bitfit::word_forms(s);
          check_encoding(tok, forms, labels, max_length);
          check_encoding(tok, forms, labels, 128);
        }
      }
    }
  } catch (const bitfit::error&) {
    std::abort();
  }
  return 0;
}
