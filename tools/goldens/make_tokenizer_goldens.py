#!/usr/bin/env python3
"""Reference token ids for the C++ BERT tokenizer (include/bitfit/text/bert_tokenizer.hpp).

Regenerate (from the repository root, after scripts/setup-python and scripts/fetch-model):
    .venv/bin/python tools/goldens/make_tokenizer_goldens.py \
        [--model models/all-MiniLM-L6-v2] [--out tests/data/tokenizer] [--data ../shared/data]
The GLUE dev file for the cased BERT-base vocabulary (vocab.txt of Google's bert-base-cased,
e.g. models/bert-base-cased/vocab.txt or the SavedModel's assets/vocab.txt):
    .venv/bin/python tools/goldens/make_tokenizer_goldens.py --vocab models/bert-base-cased/vocab.txt \
        --no-lower-case --glue-only --glue-out glue_dev_cased.tsv

The reference is BertTokenizerFast (transformers 4.40 / tokenizers 0.19) loaded from the model
directory, called as tok(a, b, max_length=N, truncation="longest_first"). Every input is also
run through the slow Python BertTokenizer; where the two disagree, the slow ids are recorded
too (column slow_ids, "=" when equal) and counted in meta.json. The C++ tests compare with the
fast ids only. Every disagreement seen (none on the GLUE dev sets) comes from one of these:
  - character classes: the fast tokenizer uses Unicode 8.0 categories (so it keeps characters
    assigned later, e.g. U+1F970, and still calls U+166D punctuation), keeps unassigned code
    points (slow: category Cn is "control", dropped) and does not space U+2B820..U+2B91F;
  - pair truncation: when both texts are cut and an odd number of places is left, the fast
    tokenizer gives the extra one to the longer text (the second on a tie), the slow one to the
    first;
  - an empty second text: BertTokenizerFast encodes a single text, the slow one adds a [SEP];
  - the slow tokenizer applies NFC before splitting (visible when accents are kept);
  - the slow tokenizer recognises "[MASK]" etc. after cleaning ("[MA\\ufffdSK]"), the fast one
    only in the raw text.

Configurations (the model's vocabulary and tokenizer_config.json, with overrides):
    uncased          do_lower_case=True  (strip_accents=None: strips accents)   = the model's own
    cased            do_lower_case=False (strip_accents=None: keeps accents)
    cased_strip      do_lower_case=False, strip_accents=True
    uncased_keep     do_lower_case=True,  strip_accents=False

Files (texts are UTF-8 hex; ids space-separated; type0 = number of leading token_type_ids 0,
the rest are 1):
    glue_dev.tsv     task, row, fnv1a64(a 0x1F b), type0, ids: every SST-2 dev sentence and
                     every RTE / MRPC dev pair, uncased, max_length 128. Texts are not stored:
                     the test reads them from the shared GLUE data; the hash checks it is the same
                     text.
    glue_dev_cased.tsv  the same for bert-base-cased (--vocab FILE --no-lower-case --glue-only
                     --glue-out glue_dev_cased.tsv: the tokenizer is built from that vocab.txt
                     alone, do_lower_case=False, strip_accents default), with its own
                     glue_dev_cased.meta.json (vocab sha256, versions, counts); --glue-only
                     writes nothing else.
    hand_made.tsv    name, config, max_length, a_hex, b_hex, type0, ids, slow_ids: the tricky
                     inputs, fixed-seed random strings, for all four configurations and
                     max_length 16 and 128 (plus 512 for long_text).
    invalid_utf8.tsv same columns; a_hex/b_hex hold byte strings that are not valid UTF-8. The
                     reference decodes them with bytes.decode("utf-8", errors="replace").
    codepoints.tsv   first, last, then for each configuration (uncased, cased, cased_strip,
                     uncased_keep) the words that BertNormalizer + BertPreTokenizer make of
                     "A" + chr(cp) + "B" for every cp in [first, last]: words separated by " ",
                     code points (hex) by ".", and "*" standing for cp itself. Covers every
                     Unicode scalar value except the Hangul syllables U+AC00..U+D7A3, whose
                     (algorithmic) decomposition the test computes; this script checks that
                     the fast tokenizer does exactly that.
    meta.json        versions, counts and slow-vs-fast disagreements.
"""
import argparse
import hashlib
import json
import random
import re
from pathlib import Path

import tokenizers
import transformers
from tokenizers import normalizers, pre_tokenizers
from transformers import BertTokenizer, BertTokenizerFast
from transformers.utils import logging as hf_logging

REPO = Path(__file__).resolve().parents[2]
MAX_LENGTH = 128
CONFIGS = {
    "uncased": dict(do_lower_case=True, strip_accents=None),
    "cased": dict(do_lower_case=False, strip_accents=None),
    "cased_strip": dict(do_lower_case=False, strip_accents=True),
    "uncased_keep": dict(do_lower_case=True, strip_accents=False),
}


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "{:016x}".format(h)


def read_tsv(path):
    """Header and rows of a GLUE tsv, split on tabs only (fields contain bare quotes)."""
    text = path.read_text(encoding="utf-8-sig")  # MRPC's header starts with a BOM
    lines = [line.split("\t") for line in text.split("\n") if line]
    return lines[0], lines[1:]


def glue_pairs(data):
    """(task, row, a, b) for the dev sets; b is None for single sentences."""
    out = []
    for task, folder, col_a, col_b in (("sst2", "SST-2", "sentence", None),
                                       ("rte", "RTE", "sentence1", "sentence2"),
                                       ("mrpc", "MRPC", "#1 String", "#2 String")):
        header, rows = read_tsv(data / "glue" / folder / "dev.tsv")
        ia = header.index(col_a)
        ib = header.index(col_b) if col_b else None
        for i, row in enumerate(rows):
            out.append((task, i, row[ia], row[ib] if ib is not None else None))
    return out


LONG_TEXT = " ".join("The quick brown fox number {} jumps over the lazy dog near the riverbank.".format(i)
                     for i in range(20))
LONG_WORD = "supercalifragilisticexpialidocious" * 3  # 102 characters


def tricky_inputs():
    """(name, a, b) with b None for single texts: the hand-made list."""
    single = [
        ("plain", "Hello, World! This is a test."),
        ("creme_brulee", "Crème brûlée"),
        ("accents", "Ångström über naïve café façade résumé São Paulo"),
        ("accents_upper", "ÀÉÎÕÜ àéîõü ÇçÑñ ØøÆæÞþ"),
        ("combining_marks", "Cre\u0300me bru\u0302le\u0301e"),
        ("mark_order", "a\u0301\u0316 a\u0316\u0301 q\u0307\u0323 A\u0345\u0301 \u1100\u1161\u11a8 "
                       "a\U0001D16D\U0001D165b"),
        ("chinese", "我爱自然语言处理，今天天气很好。"),
        ("japanese", "東京は日本の首都です。ひらがなとカタカナ、ｶﾀｶﾅ。"),
        ("korean", "안녕하세요, 세계! 한국어 문장입니다."),
        ("emoji", "I love pizza 🍕🔥 so much 😂👍🏽! 👨‍👩‍👧 ❤️"),
        ("emoji_new", "\U0001F970 \U0001F929 \U0001FAE0 smile"),
        ("url", "Visit https://example.com/path/to?q=1&x=y#frag now"),
        ("email", "Mail john.doe+tag@example.co.uk or a_b@c.org."),
        ("numbers", "3.14159 1,000,000 $69,706.00 -42 +7% 10:30pm 2024-05-01 1/2 ½ x² 3rd"),
        ("whitespace_mix", "tabs\tand\nnewlines\r\n  double  spaces\u000bvt\u000cff\u0085nel"),
        ("controls", "a\x00b\x01c\x7fd\x1fe\u200bf\u200dg\ufeffh\u00adi\ue000j\U000F0000k"),
        ("zero_width", "zero\u200bwidth\u200cnon\u200djoiner\u2060wj\u180emvs"),
        ("unicode_spaces", "a\u00a0b\u2003c\u3000d\u2028e\u2029f\u1680g\u202fh\u205fi"),
        ("replacement_char", "bad \ufffd char\ufffd\ufffd here"),
        ("long_word_101", "a" * 101),
        ("long_word_100", "a" * 100),
        ("long_word_mixed", "short " + LONG_WORD + " short"),
        ("long_word_decomposed", "e\u0301" * 60),
        ("long_word_punct", "x" * 99 + "." + "y" * 120),
        ("long_word_cjk", "字" * 150),
        ("pneumono", "pneumonoultramicroscopicsilicovolcanoconiosis"),
        ("empty", ""),
        ("spaces", "     "),
        ("whitespace_only", "\t\n \r\n\u3000"),
        ("greek", "ΟΔΟΣ Σίσυφος ΆΈΉ ὈΔΥΣΣΕΎΣ"),
        ("turkish", "İstanbul ıi İI"),
        ("german", "Straße STRASSE ẞ"),
        ("cyrillic", "Привет, мир! Ёлка Й"),
        ("arabic", "مرحبا بالعالم مَرْحَبًا ؟"),
        ("hebrew", "שָׁלוֹם עולם"),
        ("hindi", "नमस्ते दुनिया।"),
        ("thai", "สวัสดีชาวโลก"),
        ("vietnamese", "Tiếng Việt có dấu"),
        ("fullwidth", "ＡＢＣ１２３！？"),
        ("ligatures", "ﬁne ﬂow Ⅻ ① ℌ"),
        ("special_tokens", "[CLS] hello [SEP] world [MASK] [mask] [UNK][PAD]"),
        ("special_glued", "x[SEP]y [[MASK]] [MASK"),
        ("punct_run", "...!!!???---'''\"\"\"((()))"),
        ("unicode_punct", "“quoted” ‘single’ — dash – en… ¿qué? ¡sí! «guillemets» 〈〉【】、。"),
        ("math", "∑ ∫ √ ∞ ≠ ≤ ± × ÷ → ⇒ ∀x∃y"),
        ("currency", "€5 £3 ¥100 ₹20 ₿1"),
        ("apostrophes", "don't can't won't it's O'Neill rock'n'roll"),
        ("hashes", "#hashtag @user ##suffix ## #"),
        ("cjk_ext", "𠀀𠀁 \U0002B820\U0002B91F \U0002B920 \U00030000"),
        ("cjk_compat", "豈更 \U0002F800"),
        ("new_marks", "a\u07fdb a\u0890b a\u061db \U00011938 a\u1df6\u0316b a\U0001D16D\u1dfab"),
        ("old_punct", "a\u166db a\U000111c9b"),
        ("nul_inside", "hello\x00world"),
        ("mixed_scripts", "Hello世界Привет"),
        ("abbrev", "U.S.A. e.g. i.e. Mr. Smith Jr."),
        ("emoticons", ":-) :( ;) <3 ^_^"),
        ("code", "def f(x): return x**2  # comment"),
        ("html", "<div class=\"a\">&amp;</div>"),
        ("titlecase", "ǅ ǈ ǋ ǲ"),
        ("long_text", LONG_TEXT),
    ]
    out = [(name, a, None) for name, a in single]
    tie = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    out += [
        ("pair_short", "Yes.", "No."),
        ("pair_accents", "Ångström über naïve café", "El niño comió piñata en Zürich."),
        ("pair_long_a", LONG_TEXT, "Is the fox quick?"),
        ("pair_long_b", "Is the fox quick?", LONG_TEXT),
        ("pair_both_long", LONG_TEXT, LONG_TEXT[: len(LONG_TEXT) // 2]),
        ("pair_tie_long", LONG_TEXT, LONG_TEXT),
        ("pair_tie_16", tie, tie.upper()),
        ("pair_nearly_tie", tie, tie + " sixteen"),
        ("pair_empty_a", "", LONG_TEXT),
        ("pair_empty_b", LONG_TEXT, ""),
        ("pair_both_empty", "", ""),
        ("pair_blank_b", "Only the first has words.", " \t "),
        ("pair_specials", "[SEP]", "[CLS] [MASK]"),
        ("pair_cjk", "我爱自然语言处理" * 10, "今天天气很好" * 12),
    ]
    return out


def random_inputs(rng, n):
    """Strings drawn from a pool of characters that exercise every step of the pipeline."""
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
            + list(" " * 30) + list(".,;:!?'\"()[]{}#@&*-_/\\") * 2
            + list("\t\n\r\x00\x01\x7f\x85\u00a0\u2028\u3000\u200b\u200d\ufeff\ufffd\ue000")
            + list("àéîõüÀÉÎÕÜçÇñÑßẞİıΣσςæøåÅ")
            + [chr(c) for c in (0x300, 0x301, 0x308, 0x316, 0x323, 0x327, 0x345, 0x5B0, 0x64B, 0xE48,
                                0x1DF6, 0x7FD, 0x488, 0x20DD, 0x1D165, 0x1D16D)]
            + list("가각한국어각") + list("我爱中文字") + list("ひらがなカタカナｶﾀ") + list("豈\U0002B820\U00020000")
            + list("🍕😂👍🏽\U0001F970\u200d❤\ufe0f") + list("ﬁＡ１①½²") + ["\u0378", "\u061d", "\u0890", "\U00011938"]
            + ["[MASK]", "[SEP]", "[CLS]", "[UNK]", "[PAD]", "[mask]", "##", "[", "]"])
    out = []
    for i in range(n):
        k = rng.choice((0, 1, 3, 8, 20, 40, 80))
        a = "".join(rng.choice(pool) for _ in range(k))
        b = "".join(rng.choice(pool) for _ in range(rng.choice((0, 5, 30, 90)))) if i % 3 == 2 else None
        out.append(("random_{:03d}".format(i), a, b))
    return out


def invalid_inputs(rng, n):
    """(name, a_bytes, b_bytes) with ill-formed UTF-8."""
    hand = [
        ("lone_ff", b"\xff"),
        ("ff_inside", b"abc\xffdef"),
        ("truncated_2", b"\xc3"),
        ("truncated_2_then_ascii", b"\xc3("),
        ("truncated_at_end", b"caf\xc3"),
        ("truncated_3", b"\xe2\x82"),
        ("truncated_3_then_ascii", b"\xe2\x82Adam"),
        ("surrogate", b"x\xed\xa0\x80y"),
        ("truncated_emoji", b"\xf0\x9f\x98 smile"),
        ("overlong_slash", b"a\xc0\xafb"),
        ("overlong_3", b"a\xe0\x80\xafb"),
        ("above_10ffff", b"a\xf4\x90\x80\x80b"),
        ("f5", b"a\xf5\x80\x80\x80b"),
        ("stray_continuations", b"\x80\x80abc\xbf"),
        ("fe_ff", b"hello \xfe\xfe world"),
        ("latin1", "Crème brûlée à São Paulo".encode("latin-1")),
        ("cp1252_quotes", b"\x93smart quotes\x94 and \x96 dash"),
        ("valid_fffd", b"\xef\xbf\xbd ok"),
        ("emoji_then_bad", "🍕".encode() + b"\xf0\x9f" + "🔥".encode()),
        ("broken_special", b"[MA\xffSK] [MASK]\xff[SEP]"),
        ("bad_between_words", b"hello\xffworld good\xc3\xa9bad\xc3"),
        ("bad_cjk", "我爱".encode() + b"\xe6\x88" + "中文".encode()),
        ("long_bad_word", b"a" * 60 + b"\xff" * 10 + b"b" * 50),
    ]
    out = [(name, a, None) for name, a in hand]
    out.append(("pair_bad_a", b"bad \xff first", b"good second"))
    out.append(("pair_bad_both", b"\xc3\xa9\xc3", b"\xe2\x82\xac\xe2\x82"))
    fragments = ([bytes([c]) for c in range(0x20, 0x7F)] * 2 + [bytes([c]) for c in range(0x80, 0x100)]
                 + [s.encode() for s in "é我🍕İ\u0301"] + [b" "] * 20)
    for i in range(n):
        a = b"".join(rng.choice(fragments) for _ in range(rng.choice((1, 4, 16, 48))))
        out.append(("random_bytes_{:03d}".format(i), a, None))
    return out


def load(model_dir, config):
    hf_logging.set_verbosity_error()
    fast = BertTokenizerFast.from_pretrained(str(model_dir), **CONFIGS[config])
    slow = BertTokenizer.from_pretrained(str(model_dir), **CONFIGS[config])
    return fast, slow


def load_vocab(vocab, do_lower_case):
    """Fast and slow tokenizers from a bare vocab.txt (HF defaults for everything else)."""
    hf_logging.set_verbosity_error()
    fast = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=do_lower_case)
    slow = BertTokenizer(vocab_file=str(vocab), do_lower_case=do_lower_case)
    return fast, slow


def glue_dev_rows(fast, slow, data):
    """Rows of glue_dev*.tsv and the per-task counts."""
    rows, counts = [], {}
    for task, i, a, b in glue_pairs(data):
        ids, type0 = run(fast, a, b, MAX_LENGTH)
        same = run(slow, a, b, MAX_LENGTH) == (ids, type0)
        c = counts.setdefault(task, {"rows": 0, "slow_agrees": 0, "truncated": 0})
        c["rows"] += 1
        c["slow_agrees"] += same
        c["truncated"] += len(ids) == MAX_LENGTH
        key = a.encode("utf-8") + b"\x1f" + (b or "").encode("utf-8")
        rows.append([task, str(i), fnv1a64(key), str(type0), " ".join(map(str, ids))])
    return rows, counts


def run(tok, a, b, max_length):
    enc = tok(a, b, max_length=max_length, truncation="longest_first")
    ids, tt = enc["input_ids"], enc["token_type_ids"]
    type0 = tt.index(1) if 1 in tt else len(tt)
    assert tt == [0] * type0 + [1] * (len(tt) - type0)
    return ids, type0


def hand_made_rows(model_dir, items, max_lengths, meta_key, meta):
    """Rows for hand_made.tsv / invalid_utf8.tsv. `items`: (name, a, b) as str or bytes."""
    rows, disagree = [], []
    for config in CONFIGS:
        fast, slow = load(model_dir, config)
        for name, a, b in items:
            raw_a = a if isinstance(a, bytes) else a.encode("utf-8")
            raw_b = None if b is None else (b if isinstance(b, bytes) else b.encode("utf-8"))
            text_a = raw_a.decode("utf-8", errors="replace")
            text_b = None if raw_b is None else raw_b.decode("utf-8", errors="replace")
            lengths = max_lengths(name)
            for max_length in lengths:
                ids, type0 = run(fast, text_a, text_b, max_length)
                slow_ids, slow_type0 = run(slow, text_a, text_b, max_length)
                same = slow_ids == ids and slow_type0 == type0
                if not same:
                    disagree.append("{} {} {}".format(name, config, max_length))
                rows.append([name, config, str(max_length), raw_a.hex(), "" if raw_b is None else raw_b.hex(),
                             str(type0), " ".join(map(str, ids)), "=" if same else " ".join(map(str, slow_ids))])
    meta[meta_key] = {"rows": len(rows), "slow_disagreements": len(disagree), "slow_disagree_on": disagree}
    return rows


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(row) + "\n")


def codepoint_rows():
    """Run-length rows of what the fast pipeline does to "A" + chr(cp) + "B" (see the docstring)."""
    pipelines = [normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=c["do_lower_case"],
                                            strip_accents=c["strip_accents"]) for c in CONFIGS.values()]
    pre = pre_tokenizers.BertPreTokenizer()

    def words(n, s):
        return " ".join(".".join("{:X}".format(ord(ch)) for ch in w) for w, _ in pre.pre_tokenize_str(n.normalize_str(s)))

    rows = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        s = "A" + chr(cp) + "B"
        got = [words(n, s) for n in pipelines]
        if 0xAC00 <= cp <= 0xD7A3:
            i = cp - 0xAC00
            jamo = [0x1100 + i // 588, 0x1161 + (i % 588) // 28] + ([0x11A7 + i % 28] if i % 28 else [])
            decomposed = "61." + ".".join("{:X}".format(j) for j in jamo) + ".62"
            kept = "{:X}".format(cp)
            assert got == [decomposed, "41.{}.42".format(kept), "41." + decomposed[3:-3] + ".42",
                           "61.{}.62".format(kept)], (hex(cp), got)
            continue
        me = re.compile(r"(?<![0-9A-F]){:X}(?![0-9A-F])".format(cp))
        pats = [me.sub("*", g) for g in got]
        if rows and rows[-1][2:] == pats and rows[-1][1] == cp - 1:
            rows[-1][1] = cp
        else:
            rows.append([cp, cp] + pats)
    return [["{:X}".format(r[0]), "{:X}".format(r[1])] + r[2:] for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "tokenizer"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--vocab", help="build the GLUE reference from this vocab.txt instead of --model")
    ap.add_argument("--no-lower-case", action="store_true", help="with --vocab: do_lower_case=False")
    ap.add_argument("--glue-only", action="store_true", help="write only the GLUE dev file (and its meta)")
    ap.add_argument("--glue-out", default="glue_dev.tsv", help="name of the GLUE dev file in --out")
    args = ap.parse_args()
    model_dir, out, data = Path(args.model), Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "reference": "BertTokenizerFast, truncation=longest_first", "configs": CONFIGS}
    if args.no_lower_case and not args.vocab:
        ap.error("--no-lower-case needs --vocab (with --model, tokenizer_config.json decides)")

    if args.vocab:
        fast, slow = load_vocab(args.vocab, not args.no_lower_case)
    else:
        fast, slow = load(model_dir, "uncased")
    glue_rows, glue_counts = glue_dev_rows(fast, slow, data)
    write_tsv(out / args.glue_out, ["task", "row", "fnv1a64", "type0", "ids"], glue_rows)
    if args.glue_only:
        vocab = Path(args.vocab) if args.vocab else model_dir / "vocab.txt"
        glue_meta = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "reference": "BertTokenizerFast(vocab_file, do_lower_case), truncation=longest_first, "
                                  "max_length {}".format(MAX_LENGTH),
                     "vocab": str(vocab.resolve().relative_to(REPO)) if vocab.resolve().is_relative_to(REPO)
                     else str(vocab),
                     "vocab_sha256": hashlib.sha256(vocab.read_bytes()).hexdigest(),
                     "vocab_size": len(vocab.read_text(encoding="utf-8").splitlines()),
                     "normalizer": json.loads(fast.backend_tokenizer.normalizer.__getstate__()),
                     "glue_dev": glue_counts}
        meta_path = out / (Path(args.glue_out).stem + ".meta.json")
        meta_path.write_text(json.dumps(glue_meta, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(glue_meta["glue_dev"], indent=1))
        return
    meta["glue_dev"] = glue_counts

    header = ["name", "config", "max_length", "a_hex", "b_hex", "type0", "ids", "slow_ids"]
    rng = random.Random(20240501)
    tricky = tricky_inputs()
    randoms = random_inputs(rng, 300)
    lengths = lambda name: (16, 128, 512) if name == "long_text" else (16, 128)
    write_tsv(out / "hand_made.tsv", header,
              hand_made_rows(model_dir, tricky + randoms, lengths, "hand_made", meta))
    meta["hand_made"]["tricky_inputs"] = len(tricky)
    meta["hand_made"]["random_inputs"] = len(randoms)
    invalid = invalid_inputs(rng, 100)
    write_tsv(out / "invalid_utf8.tsv", header,
              hand_made_rows(model_dir, invalid, lambda name: (16, 128), "invalid_utf8", meta))
    meta["invalid_utf8"]["inputs"] = len(invalid)

    cp_rows = codepoint_rows()
    write_tsv(out / "codepoints.tsv", ["first", "last"] + list(CONFIGS), cp_rows)
    meta["codepoints"] = {"rows": len(cp_rows)}
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in meta.items() if k in ("glue_dev",)}, indent=1))
    for k in ("hand_made", "invalid_utf8"):
        print(k, meta[k]["rows"], "rows,", meta[k]["slow_disagreements"], "slow disagreements")


if __name__ == "__main__":
    main()
