#!/usr/bin/env python3
"""PyTorch performance peer for the bitfit benchmarks (CPU, 2 intra-op threads).

Each measurement runs in a fresh subprocess so that peak RSS belongs to that mode alone.
    .venv/bin/python bench/peer_torch.py --all
    .venv/bin/python bench/peer_torch.py --mode bitfit --shape minilm --batch 32 --seq-len 64
Prints one JSON object per line: peer, mode, shape, B, T, threads, median_s, tokens_per_s,
peak_rss_mib, base_rss_mib (RSS right after building the model and optimizer, so
peak_rss_mib - base_rss_mib is what one step adds), plus iters, trainable_params, torch, blas.

Modes:
    forward  BertModel (with pooler), eval, torch.no_grad
    bitfit   BertForSequenceClassification (2 labels), train mode (dropout 0.1); only parameters
             named *.bias (LayerNorm and pooler biases included) and the classifier are trainable;
             AdamW lr 1e-3; a step = forward + cross-entropy + backward + optimizer step + zero_grad
    full_ft  as bitfit with every parameter trainable
Shapes: minilm = models/all-MiniLM-L6-v2 (real weights, L6 H384 A12 I1536);
        base = BertConfig L12 H768 A12 I3072, random init.
Inputs: token ids uniform in [1000, 30000), full attention mask, token_type_ids 0.

BLAS: Debian's python3-torch does its matrix products through libblas.so.3, which is the netlib
reference BLAS (about 5 GFLOP/s) unless an optimised one is installed; that would make a straw-man
peer. `--blas-dir DIR` puts DIR (holding an optimised libblas.so.3, e.g. the openblas-pthread
directory of Debian's libopenblas0-pthread) first on the workers' LD_LIBRARY_PATH. The `blas`
field of each result names the BLAS library the worker actually mapped.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
WARMUP = 3
MIN_ITERS = 10
MIN_SECONDS = 5.0

# (mode, shape, B, T) of the standard grid.
GRID = [
    ("forward", "minilm", 32, 64),
    ("forward", "minilm", 8, 128),
    ("forward", "base", 32, 64),
    ("forward", "base", 8, 128),
    ("bitfit", "minilm", 32, 64),
    ("full_ft", "minilm", 32, 64),
]


def current_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


def mapped_blas():
    """File names of the BLAS libraries mapped into this process (torch loads them at import)."""
    with open("/proc/self/maps") as f:
        libs = {Path(line.split()[-1]).name for line in f}
    libs = {name for name in libs if "blas" in name.lower() or "mkl" in name.lower()}
    return ",".join(sorted(libs)) or "none"


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def build(mode, shape, model_dir):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    cls = BertModel if mode == "forward" else BertForSequenceClassification
    kwargs = {} if mode == "forward" else {"num_labels": 2}
    if shape == "minilm":
        return cls.from_pretrained(str(model_dir), **kwargs)
    config = BertConfig(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                        intermediate_size=3072, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, **kwargs)
    return cls(config)


def worker(args):
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    transformers.logging.set_verbosity_error()  # "newly initialized classifier" is expected
    torch.manual_seed(0)
    blas = mapped_blas()
    if not any(k in blas.lower() for k in ("openblas", "mkl", "blis")):
        print("peer_torch: torch uses the reference BLAS; pass --blas-dir for a fair peer",
              file=sys.stderr)

    model = build(args.mode, args.shape, Path(args.model))
    B, T = args.batch, args.seq_len
    ids = torch.randint(1000, 30000, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    labels = torch.randint(0, 2, (B,))

    if args.mode == "forward":
        model.eval()
        trainable = 0

        def step():
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    else:
        model.train()
        for name, p in model.named_parameters():
            p.requires_grad = (args.mode == "full_ft" or name.endswith(".bias")
                               or name.startswith("classifier."))
        params = [p for p in model.parameters() if p.requires_grad]
        trainable = sum(p.numel() for p in params)
        opt = torch.optim.AdamW(params, lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
            loss_fn(logits, labels).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    base_rss = current_rss_mib()
    for _ in range(WARMUP):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < MIN_ITERS or time.perf_counter() - start < MIN_SECONDS:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(json.dumps({
        "peer": "pytorch", "mode": args.mode, "shape": args.shape, "B": B, "T": T,
        "threads": args.threads, "median_s": round(median, 6),
        "tokens_per_s": round(B * T / median, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
        "base_rss_mib": round(base_rss, 1), "iters": len(times), "trainable_params": trainable,
        "torch": torch.__version__, "blas": blas,
    }), flush=True)


def run_fresh(args, mode, shape, B, T):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--mode", mode,
           "--shape", shape, "--batch", str(B), "--seq-len", str(T), "--model", args.model,
           "--threads", str(args.threads)]
    # Keep OpenMP/MKL from starting more threads than torch is told to use.
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    if args.blas_dir:
        if not (Path(args.blas_dir) / "libblas.so.3").is_file():
            sys.exit(f"peer_torch: no libblas.so.3 in --blas-dir {args.blas_dir}")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(Path(args.blas_dir).resolve())] + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    line = out.strip().splitlines()[-1]
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["forward", "bitfit", "full_ft"], default="forward")
    ap.add_argument("--shape", choices=["minilm", "base"], default="minilm")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--model", default=str(REPO / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--blas-dir", help="directory with an optimised libblas.so.3 for the workers")
    ap.add_argument("--all", action="store_true", help="run the standard grid")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch < 1 or not 1 <= args.seq_len <= 512:
        ap.error("need --batch >= 1 and 1 <= --seq-len <= 512")
    if args.worker:
        worker(args)
    elif args.all:
        for mode, shape, B, T in GRID:
            run_fresh(args, mode, shape, B, T)
    else:
        run_fresh(args, args.mode, args.shape, args.batch, args.seq_len)


if __name__ == "__main__":
    main()
