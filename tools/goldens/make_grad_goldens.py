#!/usr/bin/env python3
"""Reference gradients of BertForSequenceClassification (BitFit and full fine-tuning parity).

Regenerate (from the repository root, after scripts/setup-python and scripts/fetch-model):
    .venv/bin/python tools/goldens/make_grad_goldens.py \
        [--model models/all-MiniLM-L6-v2] [--out tests/data/grad] [--data ../shared/data]

The reference is transformers' BertForSequenceClassification (num_labels 2) in float64 with every
dropout probability set to 0 (train() mode then equals eval() mode: BERT has no other difference),
loss = cross-entropy averaged over the batch (HF's default for integer labels). The classifier head
is not in the checkpoint, so it is set deterministically (torch.manual_seed(0), weight ~ N(0, 0.02)
drawn in float32, bias = [0.01, -0.02]) and stored as float32; the float64 model uses exactly these
float32 values so the C++ side can load them without rounding differences.

Two padded batches (pad id 0, attention_mask 0 on pads, padded to the longest in the batch):
    single  first 4 sentences of SST-2/train.tsv, max_length 64
    pair    first 3 pairs of RTE/train.tsv, max_length 128, truncation longest_first,
            labels entailment -> 0, not_entailment -> 1

Output (little-endian .npy):
    head_weight.npy, head_bias.npy  float32 (2, H), (2,): classifier.weight / classifier.bias
    meta.json                       provenance, layouts, sampling rule
    <batch>/input_ids.npy, token_type_ids.npy, attention_mask.npy  int32 (B, T)
    <batch>/labels.npy              int32 (B,)
    <batch>/loss.npy                float64 scalar
    <batch>/logits.npy              float64 (B, 2)
    <batch>/{bq,bk,bv,bm1,bLN1,bm3,bLN2}.npy  float64 (L, H) bias gradients, per layer stacked
    <batch>/bm2.npy                 float64 (L, I)
    <batch>/emb_bLN.npy, pooler_b.npy  float64 (H,)
    <batch>/head_W.npy, head_b.npy  float64 (2, H), (2,)
    <batch>/weight_grad_samples.npy float64 (K,) sampled full fine-tuning weight gradients
    <batch>/weight_grad_index.tsv   tensor_name, flat_index, row, col of each sample (header row)
    <batch>/weight_grad_norms.tsv   tensor_name, frobenius_norm of each weight gradient (header row)
    <batch>/meta.json               loss, shapes, per-tensor stats, fp32-vs-fp64 gaps
"""
import argparse
import json
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
from golden_common import sha256

REPO = Path(__file__).resolve().parents[2]
SAMPLES_PER_TENSOR = 64
ZERO_ROW_SAMPLES = 4
SAMPLE_SEED = 1234

# Paper notation (BitFit, Ben Zaken et al. 2022) -> parameter name inside encoder.layer.<l>.
LAYER_BIASES = {
    "bq": "attention.self.query.bias",
    "bk": "attention.self.key.bias",
    "bv": "attention.self.value.bias",
    "bm1": "attention.output.dense.bias",
    "bLN1": "attention.output.LayerNorm.bias",
    "bm2": "intermediate.dense.bias",
    "bm3": "output.dense.bias",
    "bLN2": "output.LayerNorm.bias",
}
OTHER_BIASES = {
    "emb_bLN": "bert.embeddings.LayerNorm.bias",
    "pooler_b": "bert.pooler.dense.bias",
    "head_W": "classifier.weight",
    "head_b": "classifier.bias",
}
LAYER_WEIGHTS = [
    "attention.self.query.weight",
    "attention.self.key.weight",
    "attention.self.value.weight",
    "attention.output.dense.weight",
    "attention.output.LayerNorm.weight",
    "intermediate.dense.weight",
    "output.dense.weight",
    "output.LayerNorm.weight",
]


def read_tsv(path):
    """Rows of a GLUE tsv split on tabs only (GLUE fields contain bare quotes), header dropped."""
    text = path.read_text(encoding="utf-8-sig")
    return [line.split("\t") for line in text.split("\n")[1:] if line]


def weight_names(num_layers):
    """HF names (without the `bert.` prefix) of every non-bias tensor except the classifier."""
    names = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
    ]
    for l in range(num_layers):
        names += ["encoder.layer.{}.{}".format(l, w) for w in LAYER_WEIGHTS]
    names.append("pooler.dense.weight")
    return names


def make_batches(tok, data):
    glue = data / "glue"
    sst = read_tsv(glue / "SST-2" / "train.tsv")[:4]
    single = tok([r[0] for r in sst], max_length=64, truncation=True, padding="longest",
                 return_tensors="pt")
    single_labels = [int(r[1]) for r in sst]
    rte = read_tsv(glue / "RTE" / "train.tsv")[:3]
    pair = tok([r[1] for r in rte], [r[2] for r in rte], max_length=128,
               truncation="longest_first", padding="longest", return_tensors="pt")
    rte_label = {"entailment": 0, "not_entailment": 1}
    pair_labels = [rte_label[r[3]] for r in rte]
    return {
        "single": (single, single_labels, {"source": "SST-2/train.tsv rows 1-4", "max_length": 64}),
        "pair": (pair, pair_labels, {"source": "RTE/train.tsv rows 1-3", "max_length": 128,
                                     "truncation": "longest_first",
                                     "label_map": rte_label}),
    }


def build_model(model_dir, head_w, head_b, dtype, cls=BertForSequenceClassification):
    """`cls` (a BertFor... class) with dropout 0 and the given head, in `dtype`."""
    config = BertConfig.from_pretrained(str(model_dir), num_labels=head_w.shape[0], hidden_dropout_prob=0.0,
                                        attention_probs_dropout_prob=0.0)
    model = cls.from_pretrained(str(model_dir), config=config)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head_w))
        model.classifier.bias.copy_(torch.from_numpy(head_b))
    model.train()  # dropout is 0, so this is the same function as eval()
    return model.to(dtype)


def forward_backward(model, enc, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"],
                attention_mask=enc["attention_mask"], labels=torch.as_tensor(labels))
    out.loss.backward()
    grads = {n: p.grad.detach().double().clone() for n, p in model.named_parameters()}
    return out.loss.item(), out.logits.detach().double().numpy(), grads


def bias_grads(grads, num_layers):
    out = {}
    for short, name in LAYER_BIASES.items():
        out[short] = torch.stack(
            [grads["bert.encoder.layer.{}.{}".format(l, name)] for l in range(num_layers)]).numpy()
    for short, name in OTHER_BIASES.items():
        out[short] = grads[name].numpy()
    return out


def sample_indices(rng, name, shape, used_rows):
    """(flat_index, row, col) samples for one tensor; 1-D tensors are viewed as (N, 1).

    For the word and position embeddings only rows used by a real (unmasked) token have a
    non-zero gradient, so the rows are drawn among those, plus ZERO_ROW_SAMPLES entries from one
    unused row whose golden must be exactly 0. Every other tensor is sampled uniformly.
    """
    rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (shape[0], 1)
    if name in used_rows:
        used = np.array(sorted(used_rows[name]))
        unused = np.setdiff1d(np.arange(1, rows), used)  # row 0 is the pad id / position 0
        r = rng.choice(used, size=SAMPLES_PER_TENSOR)
        c = rng.integers(0, cols, size=SAMPLES_PER_TENSOR)
        zero_row = rng.choice(unused)
        zc = rng.choice(cols, size=ZERO_ROW_SAMPLES, replace=False)
        flat = np.concatenate([r * cols + c, zero_row * cols + zc])
        flat = np.unique(flat)  # sorted; duplicates from drawing with replacement dropped
    else:
        flat = np.sort(rng.choice(rows * cols, size=min(SAMPLES_PER_TENSOR, rows * cols),
                                  replace=False))
    return [(int(f), int(f // cols), int(f % cols)) for f in flat]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "grad"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    model_dir, out, data = Path(args.model), Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)

    config = BertConfig.from_pretrained(str(model_dir))
    hidden, num_layers = config.hidden_size, config.num_hidden_layers
    torch.manual_seed(0)
    head_w = torch.empty(2, hidden, dtype=torch.float32).normal_(0.0, 0.02).numpy()
    head_b = np.array([0.01, -0.02], dtype="<f4")
    np.save(out / "head_weight.npy", np.ascontiguousarray(head_w, dtype="<f4"))
    np.save(out / "head_bias.npy", head_b)

    tok = BertTokenizerFast.from_pretrained(str(model_dir))
    model64 = build_model(model_dir, head_w, head_b, torch.float64)
    model32 = build_model(model_dir, head_w, head_b, torch.float32)
    names = weight_names(num_layers)
    summary = {}

    for batch_name, (enc, labels, info) in make_batches(tok, data).items():
        bdir = out / batch_name
        bdir.mkdir(exist_ok=True)
        loss, logits, grads = forward_backward(model64, enc, labels)
        loss32, logits32, grads32 = forward_backward(model32, enc, labels)

        i32 = lambda t: np.ascontiguousarray(np.asarray(t), dtype="<i4")
        f64 = lambda a: np.ascontiguousarray(a, dtype="<f8")
        np.save(bdir / "input_ids.npy", i32(enc["input_ids"]))
        np.save(bdir / "token_type_ids.npy", i32(enc["token_type_ids"]))
        np.save(bdir / "attention_mask.npy", i32(enc["attention_mask"]))
        np.save(bdir / "labels.npy", i32(labels))
        np.save(bdir / "loss.npy", np.array(loss, dtype="<f8"))
        np.save(bdir / "logits.npy", f64(logits))

        biases = bias_grads(grads, num_layers)
        biases32 = bias_grads(grads32, num_layers)
        bias_stats = {}
        for short, g in biases.items():
            np.save(bdir / "{}.npy".format(short), f64(g))
            gap = np.abs(biases32[short] - g).max()
            bias_stats[short] = {"shape": list(g.shape), "max_abs": float(np.abs(g).max()),
                                 "fp32_max_abs_diff": float(gap),
                                 "fp32_max_abs_diff_over_max_abs":
                                     float(gap / max(np.abs(g).max(), 1e-300))}

        mask = enc["attention_mask"].numpy().astype(bool)
        ids = enc["input_ids"].numpy()
        used_rows = {
            "embeddings.word_embeddings.weight": set(ids[mask].tolist()),
            "embeddings.position_embeddings.weight": set(np.nonzero(mask.any(axis=0))[0].tolist()),
        }
        rng = np.random.default_rng(SAMPLE_SEED)
        samples, index_rows, norm_rows, weight_stats = [], [], [], {}
        for name in names:
            g = grads["bert." + name]
            gn = g.numpy()
            for flat, r, c in sample_indices(rng, name, tuple(gn.shape), used_rows):
                samples.append(gn.reshape(-1)[flat])
                index_rows.append("{}\t{}\t{}\t{}".format(name, flat, r, c))
            norm = float(torch.linalg.vector_norm(g).item())
            norm32 = float(torch.linalg.vector_norm(grads32["bert." + name]).item())
            norm_rows.append("{}\t{!r}".format(name, norm))
            weight_stats[name] = {"shape": list(gn.shape), "frobenius_norm": norm,
                                  "fp32_norm_rel_diff": abs(norm32 - norm) / norm}
        np.save(bdir / "weight_grad_samples.npy", f64(np.array(samples)))
        with open(bdir / "weight_grad_index.tsv", "w", encoding="utf-8", newline="\n") as f:
            f.write("tensor_name\tflat_index\trow\tcol\n" + "\n".join(index_rows) + "\n")
        with open(bdir / "weight_grad_norms.tsv", "w", encoding="utf-8", newline="\n") as f:
            f.write("tensor_name\tfrobenius_norm\n" + "\n".join(norm_rows) + "\n")

        meta = dict(info)
        meta.update({
            "batch_size": int(ids.shape[0]),
            "seq_len": int(ids.shape[1]),
            "real_tokens_per_row": mask.sum(axis=1).tolist(),
            "labels": labels,
            "loss": loss,
            "loss_fp32": loss32,
            "logits": logits.tolist(),
            "logits_fp32_max_abs_diff": float(np.abs(logits32 - logits).max()),
            "bias_grads": bias_stats,
            "bk_max_abs": bias_stats["bk"]["max_abs"],
            "weight_grad_samples": len(samples),
            "weight_grads": weight_stats,
        })
        (bdir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        summary[batch_name] = {"loss": loss, "bk_max_abs": meta["bk_max_abs"],
                               "samples": len(samples), "T": meta["seq_len"]}

    top = {
        "model": "models/all-MiniLM-L6-v2",
        "model_safetensors_sha256": sha256(model_dir / "model.safetensors"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "tokenizer": "BertTokenizerFast, padding to the longest in the batch, pad id 0",
        "model_class": "BertForSequenceClassification(num_labels=2)",
        "dropout": "hidden_dropout_prob = attention_probs_dropout_prob = 0 (train mode == eval mode)",
        "reference_dtype": "float64; gradients, loss and logits stored as float64",
        "loss": "cross-entropy, mean over the batch",
        "head_init": "torch.manual_seed(0); classifier.weight = torch.empty(2, H).normal_(0, 0.02) "
                     "(float32); classifier.bias = [0.01, -0.02]; the float32 values are used "
                     "exactly in the float64 model",
        "head_files": {"head_weight.npy": "float32 (2, H) classifier.weight, (out, in)",
                       "head_bias.npy": "float32 (2,) classifier.bias"},
        "bias_grad_files": {**{k: "encoder.layer.<l>." + v + ", stacked (L, dim)"
                               for k, v in LAYER_BIASES.items()},
                            **{k: v.replace("bert.", "", 1) for k, v in OTHER_BIASES.items()}},
        "weight_layout": "PyTorch layout: Linear weights are (out_features, in_features), "
                         "embeddings are (num_embeddings, H); 1-D tensors (LayerNorm weights) are "
                         "indexed as (N, 1): row = flat_index, col = 0. flat_index is row-major.",
        "weight_names": "HF parameter names without the `bert.` prefix",
        "sampling": "per batch, numpy.random.default_rng({}) consumed in weight_grad_norms.tsv "
                    "order; {} uniform flat indices without replacement per tensor, except the "
                    "word and position embeddings: {} (row, col) draws with rows among those used "
                    "by unmasked tokens (duplicates dropped), plus {} entries of one unused row "
                    "(never row 0) whose golden is exactly 0".format(
                        SAMPLE_SEED, SAMPLES_PER_TENSOR, SAMPLES_PER_TENSOR, ZERO_ROW_SAMPLES),
        "hidden_size": hidden,
        "intermediate_size": config.intermediate_size,
        "num_layers": num_layers,
        "batches": summary,
    }
    (out / "meta.json").write_text(json.dumps(top, indent=2) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
