#!/usr/bin/env python3
"""Reference goldens for the BERT encoder forward (tokenizer ids + hidden states + poolings).

Regenerate (from the repository root, after scripts/setup-python and scripts/fetch-model):
    .venv/bin/python tools/goldens/make_encoder_goldens.py \
        [--model models/all-MiniLM-L6-v2] [--out tests/data/encoder] [--data ../shared/data]

Each input is encoded ALONE (no padding) with BertTokenizerFast (max_length 128, truncation
longest_first) and run through transformers' BertModel in eval mode in float64, which is the
reference; a float32 run is made only to record the fp32-vs-fp64 gap in meta.json, so the C++ tests
can pick tolerances that are meaningful for a float32 implementation.

Output (little-endian .npy):
    inputs.tsv             id, kind (single|pair), a_hex, b_hex (texts as UTF-8 hex)
    input_ids.npy          int32 (N, Tmax), zero padded
    token_type_ids.npy     int32 (N, Tmax), zero padded
    lengths.npy            int32 (N,)
    last_hidden_state.npy  float32 (sum(lengths), H), per-input rows concatenated in input order
    pooler_output.npy      float32 (N, H)
    mean_pooled.npy        float32 (N, H), mean over the real tokens (sentence-transformers pooling)
    cls.npy                float32 (N, H), hidden state of token 0
    meta.json              provenance, versions and the measured fp32-vs-fp64 gaps
"""
import argparse
import json
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from transformers import BertModel, BertTokenizerFast
from golden_common import sha256

MAX_LENGTH = 128
REPO = Path(__file__).resolve().parents[2]


def read_tsv(path):
    """Rows of a GLUE tsv split on tabs only (GLUE fields contain bare quotes), header dropped."""
    text = path.read_text(encoding="utf-8-sig")  # MRPC's header starts with a BOM
    lines = text.split("\n")
    return [line.split("\t") for line in lines[1:] if line]


def glue_inputs(data):
    glue = data / "glue"
    sst = read_tsv(glue / "SST-2" / "dev.tsv")
    rte = read_tsv(glue / "RTE" / "dev.tsv")
    mrpc = read_tsv(glue / "MRPC" / "dev.tsv")
    out = []
    # Spread the picks over each file so they are not all from the first rows.
    for i in range(8):
        out.append(("sst2", sst[i * 97][0], None))
    for i in range(6):
        row = rte[i * 41]
        out.append(("rte", row[1], row[2]))
    for i in range(6):
        row = mrpc[i * 61]
        out.append(("mrpc", row[3], row[4]))
    return out


def hand_inputs():
    long_text = " ".join(
        "The quick brown fox number {} jumps over the lazy dog near the riverbank.".format(i)
        for i in range(20)
    )
    return [
        ("accents", "Crème brûlée à la façon de São Paulo", None),
        ("accents_pair", "Ångström über naïve café", "El niño comió piñata en Zürich."),
        ("chinese", "我爱自然语言处理，今天天气很好。", None),
        ("japanese", "東京は日本の首都です。ひらがなとカタカナ。", None),
        ("korean", "안녕하세요, 세계! 한국어 문장입니다.", None),
        ("emoji", "I love pizza 🍕🔥 so much 😂👍🏽!", None),
        ("url_email", "Visit https://example.com/path?q=1&x=y or mail john.doe@example.org now.", None),
        ("numbers_punct", "Pi is 3.14159; e≈2.718... (1,000,000 - 42) * 7% = $69,706.00?!", None),
        ("mixed_case", "tHiS iS MiXeD CaSe WiTh McDonald's and iPhone", None),
        ("control_ws", "tabs\tand\nnewlines\r\n  and  double  spaces", None),
        ("unknown_chars", "\u2603 snowman, \u00a0nbsp, zero\u200bwidth, \ufffd replacement", None),
        ("long_single", long_text, None),
        ("long_pair", long_text, "Is the fox quick?"),
        ("empty", "", None),
        ("whitespace", "   \t \n  ", None),
        ("short_pair", "Yes.", "No."),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "encoder"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    model_dir, out, data = Path(args.model), Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    inputs = glue_inputs(data) + hand_inputs()
    tok = BertTokenizerFast.from_pretrained(str(model_dir))
    model64 = BertModel.from_pretrained(str(model_dir), add_pooling_layer=True).eval().double()
    model32 = BertModel.from_pretrained(str(model_dir), add_pooling_layer=True).eval().float()

    ids_list, tt_list, hidden, pooler, mean, cls = [], [], [], [], [], []
    gap_hidden = gap_pooler = 0.0
    for kind, a, b in inputs:
        enc = tok(a, b, max_length=MAX_LENGTH, truncation="longest_first", padding=False,
                  return_tensors="pt")
        ids, tt = enc["input_ids"], enc["token_type_ids"]
        with torch.no_grad():
            r64 = model64(input_ids=ids, token_type_ids=tt)
            r32 = model32(input_ids=ids, token_type_ids=tt)
        h64 = r64.last_hidden_state[0]
        gap_hidden = max(gap_hidden, (r32.last_hidden_state[0].double() - h64).abs().max().item())
        gap_pooler = max(gap_pooler, (r32.pooler_output[0].double() - r64.pooler_output[0]).abs().max().item())
        ids_list.append(ids[0].numpy())
        tt_list.append(tt[0].numpy())
        hidden.append(h64.numpy())
        pooler.append(r64.pooler_output[0].numpy())
        mean.append(h64.mean(dim=0).numpy())
        cls.append(h64[0].numpy())

    n = len(inputs)
    lengths = np.array([len(x) for x in ids_list], dtype="<i4")
    tmax = int(lengths.max())
    input_ids = np.zeros((n, tmax), dtype="<i4")
    token_type_ids = np.zeros((n, tmax), dtype="<i4")
    for i, (x, t) in enumerate(zip(ids_list, tt_list)):
        input_ids[i, : len(x)] = x
        token_type_ids[i, : len(t)] = t

    f32 = lambda a: np.ascontiguousarray(a, dtype="<f4")
    np.save(out / "input_ids.npy", input_ids)
    np.save(out / "token_type_ids.npy", token_type_ids)
    np.save(out / "lengths.npy", lengths)
    np.save(out / "last_hidden_state.npy", f32(np.concatenate(hidden, axis=0)))
    np.save(out / "pooler_output.npy", f32(np.stack(pooler)))
    np.save(out / "mean_pooled.npy", f32(np.stack(mean)))
    np.save(out / "cls.npy", f32(np.stack(cls)))

    with open(out / "inputs.tsv", "w", encoding="utf-8", newline="\n") as f:
        f.write("id\tkind\ta_hex\tb_hex\n")
        for i, (_, a, b) in enumerate(inputs):
            kind = "single" if b is None else "pair"
            f.write("{}\t{}\t{}\t{}\n".format(i, kind, a.encode("utf-8").hex(),
                                              "" if b is None else b.encode("utf-8").hex()))

    meta = {
        "model": str(model_dir.resolve().relative_to(REPO)) if model_dir.resolve().is_relative_to(REPO)
        else str(model_dir),
        "model_safetensors_sha256": sha256(model_dir / "model.safetensors"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "tokenizer": "BertTokenizerFast",
        "reference_dtype": "float64 (stored as float32)",
        "max_length": MAX_LENGTH,
        "truncation": "longest_first",
        "n": n,
        "hidden_size": int(hidden[0].shape[1]),
        "total_tokens": int(lengths.sum()),
        "labels": [name for name, _, _ in inputs],
        "fp32_vs_fp64_max_abs_diff": {"last_hidden_state": gap_hidden, "pooler_output": gap_pooler},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({k: meta[k] for k in ("n", "total_tokens", "fp32_vs_fp64_max_abs_diff")}))


if __name__ == "__main__":
    main()
