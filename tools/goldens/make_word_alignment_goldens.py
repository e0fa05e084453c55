#!/usr/bin/env python3
"""Reference word -> wordpiece alignments for bert_tokenizer::encode_words
(include/bitfit/text/bert_tokenizer.hpp), on real UD English-EWT dev sentences.

Regenerate (from the repository root, after scripts/setup-python and scripts/fetch-model for
bert-base-cased and all-MiniLM-L6-v2):
    .venv/bin/python tools/goldens/make_word_alignment_goldens.py \
        [--data ../shared/data] [--out tests/data/word_alignment_goldens.json]

The reference is BertTokenizerFast (transformers 4.40 / tokenizers 0.19) loaded from each model
directory (bert-base-cased: its vocab.txt and tokenizer_config.json, do_lower_case=False; MiniLM:
its tokenizer.json, uncased), called as
    tok(words, is_split_into_words=True, truncation=True, max_length=N)
with .word_ids() as the alignment (None written as -1).

Inputs ("sentences" in the file, in this order):
  - 200 sentences of en_ewt-ud-dev.conllu, in file order: every one whose text has a URL,
    an e-mail address or a non-ASCII character (the dev file's only emoji is U+2665), the 40
    with the most words, and a fixed-seed sample of the rest. Words are the syntactic words
    (FORM of each integer-ID line: "didn't" is "did" + "n't"), as bitfit::read_conllu gives them.
  - a few hand-made word lists: words that give no token ("", spaces, control characters), special
    token strings as words, spaces inside a word, emoji, CJK, a word past 100 characters, and
    lists built to cut inside a word or exactly at a word boundary at max_length 32.

Per model ("models" in the file), per input:
    ids, word_ids          max_length 512 (nothing is cut: every input is shorter)
    kept                   bitfit's words_kept at max_length 32: the longest prefix of whole
                           words whose tokens fit in 30 places (a word without tokens always fits)
    cut_ids, cut_word_ids  HF at max_length 32, only where that differs from the uncut encoding;
                           HF keeps the first pieces of the word at the cut, bitfit drops that
                           word, so the test expects HF's tokens of the words before `kept`.
The script checks that HF's cut encoding is the uncut one's prefix and that word_ids never
decrease, the two facts the C++ test relies on.
"""
import argparse
import hashlib
import json
import random
import re
from pathlib import Path

import tokenizers
import transformers
from transformers import BertTokenizerFast

REPO = Path(__file__).resolve().parents[2]
CUT = 32
FULL = 512
SAMPLE = 200
LONGEST = 40
SEED = 20251123
MODELS = ("bert-base-cased", "all-MiniLM-L6-v2")


def read_conllu(path):
    """(sent_id, text, [FORM of each syntactic word]) per sentence."""
    out, sent_id, text, words = [], None, "", []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line:
            if words:
                out.append((sent_id, text, words))
            sent_id, text, words = None, "", []
        elif line.startswith("# sent_id = "):
            sent_id = line[len("# sent_id = "):]
        elif line.startswith("# text = "):
            text = line[len("# text = "):]
        elif not line.startswith("#"):
            cols = line.split("\t")
            if cols[0].isdigit():
                words.append(cols[1])
    if words:
        out.append((sent_id, text, words))
    return out


def pick_sentences(sentences):
    """SAMPLE sentences in file order: the special ones, the longest, then a fixed-seed sample."""
    special = re.compile(r"https?://|www\.|\S@\S|[^\x00-\x7f]")
    chosen = {i for i, (_, text, words) in enumerate(sentences)
              if special.search(text) or any(special.search(w) for w in words)}
    by_length = sorted(range(len(sentences)), key=lambda i: (-len(sentences[i][2]), i))
    chosen |= set(by_length[:LONGEST])
    rest = sorted(set(range(len(sentences))) - chosen)
    chosen |= set(random.Random(SEED).sample(rest, SAMPLE - len(chosen)))
    return [sentences[i] for i in sorted(chosen)]


def hand_made():
    """(name, words): the cases real sentences do not reach."""
    return [
        ("no_tokens", ["Hello", "", " ", "\t", "\n", "world"]),
        ("control_only", ["a", "\u200b", "\x00\x01", "\u00ad", "b", "\ufeff"]),
        ("special_tokens", ["[SEP]", "[CLS]", "x[MASK]y", "[UNK]", "[PAD]"]),
        ("spaces_inside", ["New York", "3 1/2", "e-mail", " padded "]),
        ("emoji", ["I", "\u2764\ufe0f", "\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F469\u200d\U0001F469\u200d\U0001F467", "!"]),
        ("cjk_accents", ["\u65e5\u672c\u8a9e", "D\u00e9j\u00e0", "vu", "na\u00efve", "\u00c5ngstr\u00f6m", "e\u0301"]),
        ("long_word", ["x" * 150, "ok", "supercalifragilisticexpialidocious"]),
        ("url_email", ["http://www.example.com/a_b?c=d&e=f", "john.doe@example.org", "<3", ":-)"]),
        ("cut_inside_word", ["a"] * 29 + ["supercalifragilisticexpialidocious", "", "b"]),
        ("cut_at_boundary", ["a"] * 30 + ["", "b"]),
        ("only_empty", ["", " "]),
        ("no_words", []),
    ]


def encode(tok, words, max_length):
    enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_length)
    return enc["input_ids"], [-1 if w is None else w for w in enc.word_ids()]


def kept_words(word_ids, n_words, budget):
    """bitfit's words_kept: the longest prefix of whole words with at most `budget` tokens."""
    counts = [0] * n_words
    for w in word_ids:
        if w >= 0:
            counts[w] += 1
    used = kept = 0
    while kept < n_words and used + counts[kept] <= budget:
        used += counts[kept]
        kept += 1
    return kept


def model_rows(tok, inputs):
    rows, truncated = [], 0
    for words in inputs:
        ids, word_ids = encode(tok, words, FULL)
        assert len(ids) < FULL, "an input is cut at {}: {}".format(FULL, words)
        assert all(a <= b for a, b in zip(word_ids[1:-1], word_ids[2:-1])), word_ids
        row = {"ids": ids, "word_ids": word_ids, "kept": kept_words(word_ids, len(words), CUT - 2)}
        cut_ids, cut_word_ids = encode(tok, words, CUT)
        if cut_ids != ids:
            assert cut_ids[:-1] == ids[:CUT - 1] and cut_word_ids[:-1] == word_ids[:CUT - 1]
            row["cut_ids"], row["cut_word_ids"] = cut_ids, cut_word_ids
            truncated += 1
        rows.append(row)
    return rows, truncated


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "word_alignment_goldens.json"))
    args = ap.parse_args()
    dev = Path(args.data) / "ud_english_ewt" / "en_ewt-ud-dev.conllu"
    picked = pick_sentences(read_conllu(dev))
    sentences = [{"sent_id": sid, "words": words} for sid, _, words in picked]
    sentences += [{"name": name, "words": words} for name, words in hand_made()]
    inputs = [s["words"] for s in sentences]

    meta = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "reference": "BertTokenizerFast(words, is_split_into_words=True, truncation=True, max_length=N)"
                         ".word_ids(), None as -1",
            "max_length": FULL, "cut_max_length": CUT,
            "source": "en_ewt-ud-dev.conllu (UD English-EWT v2.16)",
            "source_sha256": hashlib.sha256(dev.read_bytes()).hexdigest(),
            "dev_sentences": len(picked), "hand_made": len(hand_made()), "models": {}}
    models = {}
    for name in MODELS:
        model_dir = Path(args.models) / name
        assert (model_dir / "vocab.txt").exists(), "{} has no vocab.txt: scripts/fetch-model {}".format(model_dir, name)
        tok = BertTokenizerFast.from_pretrained(str(model_dir))
        models[name], truncated = model_rows(tok, inputs)
        meta["models"][name] = {"vocab_sha256": hashlib.sha256((model_dir / "vocab.txt").read_bytes()).hexdigest(),
                                "do_lower_case": tok.do_lower_case, "cut_at_32": truncated,
                                "cut_inside_a_word": sum(1 for r, s in zip(models[name], inputs)
                                                         if "cut_ids" in r and r["cut_word_ids"][-2] < len(s)
                                                         and r["cut_word_ids"][-2] >= r["kept"])}
    out = Path(args.out)
    out.write_text(json.dumps({"meta": meta, "sentences": sentences, "models": models},
                              ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(json.dumps(meta["models"], indent=1), out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
