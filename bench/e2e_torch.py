#!/usr/bin/env python3
"""End-to-end wall time of one BitFit epoch of BERT-base on GLUE with PyTorch (CPU, 2 threads).

The peer for our `bitfit train` on real data.

    .venv/bin/python bench/e2e_torch.py --task rte --recipe runglue
    .venv/bin/python bench/e2e_torch.py --task sst2-2k --recipe dynamic
    .venv/bin/python bench/e2e_torch.py --task rte --recipe dynamic --max-steps 3   # smoke test

Tasks: rte = RTE/train.tsv, every row (sentence pairs, 2,490 examples);
       sst2-2k = the first 2,000 rows of SST-2/train.tsv (single sentences).
Model: BertForSequenceClassification (2 labels) from --model (default models/bert-base-uncased),
train mode (dropout 0.1). BitFit: every parameter named *.bias (LayerNorm and pooler biases
included) and the classifier train, everything else is frozen. Batch 16, torch.optim.AdamW
(lr 1e-3, weight decay 0), clip_grad_norm_(1.0), batches in an order shuffled with --seed.
Recipes:
    runglue  the original BitFit repository's run_glue.py (GLUEvaluator): BertTokenizerFast from
             the model directory with padding="max_length", max_length=128, truncation=True, so
             every batch is 16 x 128
    dynamic  the same, but each batch is padded to its longest sequence (truncation at 128 kept),
             as transformers' DataCollatorWithPadding does: the fair comparison of engines
Timing: tokenize_s is the tokenizer call over all examples; train_s is the training loop (batch
collation, forward, loss, backward, clipping, AdamW); epoch_s = tokenize_s + epoch_train_s. With
--max-steps N only N steps run: train_s, examples and tokens are of those steps, and
epoch_train_s extrapolates train_s to the whole epoch by padded tokens (extrapolated: true; rough,
the first step includes one-time set-up).

Prints one JSON line: peer, task, recipe, B, threads, examples, steps, epoch_examples, epoch_steps,
real_tokens (sum of attention_mask), padded_tokens (sum of batch x length), epoch_real_tokens,
epoch_padded_tokens, load_s (model and optimizer), tokenize_s, train_s, step_s_mean,
tokens_per_s (real tokens / train_s), epoch_train_s, epoch_s, extrapolated, loss_first_quarter,
loss_last_quarter and mean_loss (mean training loss over the first / last quarter of the steps
run / all of them), trainable_params, peak_rss_mib (the whole process, model load included),
train_peak_rss_mib (high-water mark since the model and optimizer were built; null if the
kernel refused the reset), base_rss_mib, and the machine fields of peer_torch.py (cpu_model,
torch, blas, onednn, mkldnn_enabled, cpu_capability). Exits 1 if a loss is not finite.
"""
import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from peer_torch import current_rss_mib, machine_info, peak_rss_mib, reset_peak_rss

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "glue"
BATCH = 16
MAX_LEN = 128
RTE_LABELS = {"entailment": 0, "not_entailment": 1}  # the order of HF's glue/rte


def read_task(data_dir, task):
    """(first sentences, second sentences or None, labels) of the task's training rows."""
    if task == "rte":
        with open(data_dir / "RTE" / "train.tsv", encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        return [r[1] for r in rows], [r[2] for r in rows], [RTE_LABELS[r[3]] for r in rows]
    with open(data_dir / "SST-2" / "train.tsv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:2001]
    return [r[0] for r in rows], None, [int(r[1]) for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=["rte", "sst2-2k"], required=True)
    ap.add_argument("--recipe", choices=["runglue", "dynamic"], required=True)
    ap.add_argument("--data-dir", default=str(DATA), help="GLUE folder holding RTE/ and SST-2/")
    ap.add_argument("--model", default=str(REPO / "models" / "bert-base-uncased"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, help="stop after N steps and extrapolate the epoch")
    args = ap.parse_args()
    if args.max_steps is not None and args.max_steps < 1:
        ap.error("--max-steps must be >= 1")

    import torch
    import transformers
    from transformers import BertForSequenceClassification, BertTokenizerFast

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    transformers.logging.set_verbosity_error()  # "newly initialized classifier" is expected
    info = machine_info(torch)

    first, second, labels = read_task(Path(args.data_dir), args.task)
    tokenizer = BertTokenizerFast.from_pretrained(args.model)
    padding = "max_length" if args.recipe == "runglue" else False
    t0 = time.perf_counter()
    enc = tokenizer(first, second, padding=padding, max_length=MAX_LEN, truncation=True)
    tokenize_s = time.perf_counter() - t0
    n = len(labels)

    t0 = time.perf_counter()
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2)
    model.train()
    for name, p in model.named_parameters():
        p.requires_grad = name.endswith(".bias") or name.startswith("classifier.")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    load_s = time.perf_counter() - t0

    order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed)).tolist()
    batches = [order[i:i + BATCH] for i in range(0, n, BATCH)]
    real = [sum(m) for m in enc["attention_mask"]]
    padded = [len(b) * max(len(enc["input_ids"][i]) for i in b) for b in batches]
    run = batches[:args.max_steps] if args.max_steps else batches

    load_peak = peak_rss_mib()
    reset = reset_peak_rss()
    base_rss = current_rss_mib()
    losses = []
    t0 = time.perf_counter()
    for b in run:
        batch = tokenizer.pad({k: [enc[k][i] for i in b] for k in enc.keys()}, return_tensors="pt")
        logits = model(**batch).logits
        loss = loss_fn(logits, torch.tensor([labels[i] for i in b]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    train_s = time.perf_counter() - t0
    train_peak = peak_rss_mib()

    steps = len(run)
    run_padded = sum(padded[:steps])
    epoch_train_s = train_s * sum(padded) / run_padded
    quarter = max(1, steps // 4)
    print(json.dumps({
        "peer": "pytorch", "task": args.task, "recipe": args.recipe, "B": BATCH,
        "threads": args.threads, "examples": sum(len(b) for b in run), "steps": steps,
        "epoch_examples": n, "epoch_steps": len(batches),
        "real_tokens": sum(real[i] for b in run for i in b), "padded_tokens": run_padded,
        "epoch_real_tokens": sum(real), "epoch_padded_tokens": sum(padded),
        "load_s": round(load_s, 3), "tokenize_s": round(tokenize_s, 3), "train_s": round(train_s, 3),
        "step_s_mean": round(train_s / steps, 4),
        "tokens_per_s": round(sum(real[i] for b in run for i in b) / train_s, 1),
        "epoch_train_s": round(epoch_train_s, 3), "epoch_s": round(tokenize_s + epoch_train_s, 3),
        "extrapolated": steps < len(batches),
        "loss_first_quarter": round(statistics.mean(losses[:quarter]), 4),
        "loss_last_quarter": round(statistics.mean(losses[-quarter:]), 4),
        "mean_loss": round(statistics.mean(losses), 4),
        "trainable_params": sum(p.numel() for p in params),
        "peak_rss_mib": round(max(load_peak, train_peak), 1),
        "train_peak_rss_mib": round(train_peak, 1) if reset else None,
        "base_rss_mib": round(base_rss, 1),
    } | info), flush=True)
    if not all(math.isfinite(x) for x in losses):
        sys.exit("e2e_torch: non-finite training loss")


if __name__ == "__main__":
    main()
