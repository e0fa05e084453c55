#!/usr/bin/env python3
"""Reference gradients of BertForTokenClassification (token-level BitFit parity, issue #11).

Regenerate (from the repository root, after scripts/setup-python and scripts/fetch-model):
    .venv/bin/python tools/goldens/make_token_grad_goldens.py \
        [--model models/all-MiniLM-L6-v2] [--out tests/data/token_grad] [--data ../shared/data]

The reference is transformers' BertForTokenClassification (17 labels: the UPOS tags, sorted) in
float64 with every dropout probability 0, loss = cross-entropy over the labelled tokens (HF's
default: labels -100 are ignored, the mean is over the rest). Its BertModel has no pooler
(add_pooling_layer=False), so no pooler gradient exists. The head is set deterministically
(torch.manual_seed(0), weight ~ N(0, 0.02) drawn in float32, bias 0.01 * (c - 8)) and stored as
float32, which the float64 model uses exactly.

One padded batch: the first 4 sentences of en_ewt-ud-dev.conllu with at most 24 words (multiword
token lines and empty nodes skipped, as the CoNLL-U reader does), tokenized with
is_split_into_words=True, max_length 64; the first sub-token of each word carries its UPOS id,
every other position -100 (HF's token-classification recipe).

Output (little-endian .npy) in --out:
    head_weight.npy, head_bias.npy  float32 (17, H), (17,)
    input_ids.npy, token_type_ids.npy, attention_mask.npy, labels.npy  int32 (B, T)
    loss.npy                        float64 scalar
    logits.npy                      float64 (B, T, 17)
    {bq,bk,bv,bm1,bLN1,bm3,bLN2}.npy float64 (L, H); bm2.npy (L, I); emb_bLN.npy (H,)
    head_W.npy, head_b.npy          float64 (17, H), (17,)
    meta.json                       provenance, sentences, fp32-vs-fp64 gaps
"""
import argparse
import json
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast
from golden_common import sha256
from make_grad_goldens import LAYER_BIASES, build_model, forward_backward

REPO = Path(__file__).resolve().parents[2]
UPOS = sorted(["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
               "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"])
IGNORE = -100


def sentences(path, count, max_words):
    """(words, upos) of the first `count` sentences with at most `max_words` syntactic words."""
    out, words, tags = [], [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line:
            if words and len(words) <= max_words:
                out.append((words, tags))
                if len(out) == count:
                    return out
            words, tags = [], []
        elif not line.startswith("#"):
            cols = line.split("\t")
            if "-" in cols[0] or "." in cols[0]:
                continue
            words.append(cols[1])
            tags.append(UPOS.index(cols[3]))
    return out


def bias_grads(grads, num_layers):
    out = {short: torch.stack([grads["bert.encoder.layer.{}.{}".format(l, name)] for l in range(num_layers)]).numpy()
           for short, name in LAYER_BIASES.items()}
    out["emb_bLN"] = grads["bert.embeddings.LayerNorm.bias"].numpy()
    out["head_W"] = grads["classifier.weight"].numpy()
    out["head_b"] = grads["classifier.bias"].numpy()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "token_grad"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    model_dir, out, data = Path(args.model), Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)

    config = BertConfig.from_pretrained(str(model_dir))
    C = len(UPOS)
    torch.manual_seed(0)
    head_w = torch.empty(C, config.hidden_size, dtype=torch.float32).normal_(0.0, 0.02).numpy()
    head_b = (0.01 * (np.arange(C) - 8)).astype("<f4")
    np.save(out / "head_weight.npy", np.ascontiguousarray(head_w, dtype="<f4"))
    np.save(out / "head_bias.npy", head_b)

    conllu = Path(data) / "ud_english_ewt" / "en_ewt-ud-dev.conllu"
    sents = sentences(conllu, 4, 24)
    tok = BertTokenizerFast.from_pretrained(str(model_dir))
    enc = tok([w for w, _ in sents], is_split_into_words=True, max_length=64, truncation=True,
              padding="longest", return_tensors="pt")
    labels = torch.full(enc["input_ids"].shape, IGNORE, dtype=torch.long)
    for b, (_, tags) in enumerate(sents):
        previous = None
        for t, word in enumerate(enc.word_ids(b)):
            if word is not None and word != previous:
                labels[b, t] = tags[word]
            previous = word

    loss, logits, grads = forward_backward(
        build_model(model_dir, head_w, head_b, torch.float64, BertForTokenClassification), enc, labels)
    loss32, logits32, grads32 = forward_backward(
        build_model(model_dir, head_w, head_b, torch.float32, BertForTokenClassification), enc, labels)
    assert not any(n.startswith("bert.pooler") for n in grads), "BertForTokenClassification has no pooler"

    i32 = lambda t: np.ascontiguousarray(np.asarray(t), dtype="<i4")
    f64 = lambda a: np.ascontiguousarray(a, dtype="<f8")
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        np.save(out / (name + ".npy"), i32(enc[name]))
    np.save(out / "labels.npy", i32(labels))
    np.save(out / "loss.npy", np.array(loss, dtype="<f8"))
    np.save(out / "logits.npy", f64(logits))
    stats = {}
    b32 = bias_grads(grads32, config.num_hidden_layers)
    for short, g in bias_grads(grads, config.num_hidden_layers).items():
        np.save(out / (short + ".npy"), f64(g))
        stats[short] = {"shape": list(g.shape), "max_abs": float(np.abs(g).max()),
                        "fp32_max_abs_diff": float(np.abs(b32[short] - g).max())}
    meta = {
        "generator": "tools/goldens/make_token_grad_goldens.py",
        "reference": "transformers.BertForTokenClassification, float64, dropout 0",
        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
        "model": str(model_dir.relative_to(REPO)) if model_dir.is_relative_to(REPO) else str(model_dir),
        "model_sha256": sha256(model_dir / "model.safetensors"),
        "source": "ud_english_ewt/en_ewt-ud-dev.conllu, first 4 sentences of <= 24 words",
        "conllu_sha256": sha256(conllu),
        "labels": UPOS,
        "sentences": [" ".join(w) for w, _ in sents],
        "labelled_tokens": int((labels != IGNORE).sum()),
        "loss": loss, "loss_fp32": loss32,
        "logits_fp32_max_abs_diff": float(np.abs(logits32 - logits).max()),
        "bias_grads": stats,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print("wrote", out, "loss", loss, "labelled tokens", meta["labelled_tokens"])


if __name__ == "__main__":
    main()
