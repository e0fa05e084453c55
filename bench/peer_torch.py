#!/usr/bin/env python3
"""PyTorch performance peer for the bitfit benchmarks (CPU, 2 intra-op threads).

Each measurement runs in a fresh subprocess so that peak RSS belongs to that mode alone.
    .venv/bin/python bench/peer_torch.py --all                  # the standard grid (30 runs, long)
    .venv/bin/python bench/peer_torch.py --gemm-peak            # torch.matmul 1024^3, fp32 and bf16
    .venv/bin/python bench/peer_torch.py --mode bitfit --shape minilm --batch 32 --seq-len 64
    .venv/bin/python bench/peer_torch.py --mode frozen --shape base --batch 16 --seq-len 64 --precision bf16
Prints one JSON object per line: peer, mode, shape, model, precision, B, T, threads, median_s,
tokens_per_s, peak_rss_mib, base_rss_mib (RSS right after building the model and optimizer, so
peak_rss_mib - base_rss_mib is what the steps add), peak_rss_reset, iters, trainable_params, plus
the machine fields (cpu_model, isa_caps, torch, blas, onednn, mkldnn_enabled, cpu_capability).
`--gemm-peak` prints one line per precision (or only `--precision`'s): peer, mode "gemm",
precision, N, threads, median_s, gflops, iters and the machine fields.

Modes (the trainable sets match ours, bitfit's fine-tune types):
    forward        BertModel (with pooler), eval, torch.no_grad
    bitfit         BertForSequenceClassification (2 labels), train mode (dropout 0.1); parameters
                   named *.bias (LayerNorm and pooler biases included) and the classifier train
    bitfit_bq_bm2  as bitfit, but only attention.self.query.bias and intermediate.dense.bias of
                   every layer and the classifier train
    frozen         as bitfit, only the classifier trains
    full_ft        as bitfit, every parameter trains
A train step = forward + cross-entropy + backward + clip_grad_norm_(1.0) + AdamW (lr 1e-3,
weight decay 0) + zero_grad, as the BitFit recipe and our trainer do.
Shapes (real weights, loaded with from_pretrained from the local directory):
    minilm = models/all-MiniLM-L6-v2 (L6 H384 A12 I1536)
    base   = models/bert-base-uncased (L12 H768 A12 I3072)
Inputs: token ids uniform in [1000, 30000), full attention mask, token_type_ids 0.

Precision: fp32, or bf16 = forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)
(backward outside it, as usual). Parameters, gradients and the optimizer stay fp32; autocast casts
the weights of linear/matmul to bf16 on every call (it caches casts only of leaf tensors that
require grad, so frozen weights are re-cast every step).

Peak RSS: loading real weights briefly holds them twice (BERT-base: ~1.1 GB peak for a model that
then sits at ~680 MB), which would hide what a step costs. The worker therefore resets the kernel's
high-water mark (/proc/self/clear_refs, "5") after building the model and optimizer; peak_rss_mib
is the high-water mark since then, and peak_rss_reset says whether the reset worked (if false,
peak_rss_mib includes the load).

BLAS: Debian's python3-torch does its fp32 matrix products through libblas.so.3, which is the
netlib reference BLAS (about 5 GFLOP/s) unless an optimised one is installed; that would make a
straw-man peer. `--blas-dir DIR` puts DIR (holding an optimised libblas.so.3, e.g. the
openblas-pthread directory of Debian's libopenblas0-pthread) first on the workers'
LD_LIBRARY_PATH. The `blas` field of each result names the BLAS library the worker actually
mapped. bf16 matrix products go through oneDNN (MKL-DNN) instead, whatever the BLAS.
"""
import argparse
import json
import os
import re
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
GEMM_N = 1024

MODES = ["forward", "bitfit", "bitfit_bq_bm2", "frozen", "full_ft"]
PRECISIONS = ["fp32", "bf16"]
MODEL_DIRS = {"minilm": REPO / "models" / "all-MiniLM-L6-v2",
              "base": REPO / "models" / "bert-base-uncased"}
# (shape, B, T) of the standard grid; each runs every mode in every precision.
GRID = [("base", 16, 64), ("base", 32, 128), ("minilm", 32, 64)]
BQ_BM2 = ("attention.self.query.bias", "intermediate.dense.bias")


def status_mib(key):
    """A "VmRSS:"-style field of /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{key} not found in /proc/self/status")


def current_rss_mib():
    return status_mib("VmRSS:")


def peak_rss_mib():
    return status_mib("VmHWM:")


def reset_peak_rss():
    """Sets the high-water mark (VmHWM, ru_maxrss) to the current RSS; False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mapped_blas():
    """File names of the BLAS libraries mapped into this process (torch loads them at import)."""
    with open("/proc/self/maps") as f:
        libs = {Path(line.split()[-1]).name for line in f}
    libs = {name for name in libs if "blas" in name.lower() or "mkl" in name.lower()}
    return ",".join(sorted(libs)) or "none"


def machine_info(torch):
    """CPU model and the torch build's compute back-ends, recorded in every JSON line."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break  # the first processor's block is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    # As bitfit's cpu_info::describe(): the brand string alone ("AMD EPYC") names several generations.
    cpu = fields.get("model name", "unknown")
    if "cpu family" in fields:
        cpu += f' (family {fields["cpu family"]}, model {fields.get("model", "?")}, stepping {fields.get("stepping", "?")})'

    config = torch.__config__.show()
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([\w.]+)", config)
    capability = re.search(r"CPU capability usage: (\S+)", config)
    # Instruction-set caps in force (bench/compare.py --isa-cap avx2): the kernels they leave.
    caps = {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY")
            if k in os.environ}
    return {"cpu_model": cpu, "isa_caps": caps, "torch": torch.__version__, "blas": mapped_blas(),
            "onednn": onednn.group(1) if onednn and torch.backends.mkldnn.is_available() else None,
            "mkldnn_enabled": torch.backends.mkldnn.enabled,
            "cpu_capability": capability.group(1) if capability else None}


def trains(mode, name):
    """Whether parameter `name` of BertForSequenceClassification is trainable in `mode`."""
    if mode == "full_ft" or name.startswith("classifier."):
        return True
    if mode == "bitfit":
        return name.endswith(".bias")
    if mode == "bitfit_bq_bm2":
        return name.endswith(BQ_BM2)
    return False  # frozen


def median_time(step, warmup=WARMUP, min_iters=MIN_ITERS):
    """Median seconds of step() after `warmup` calls; at least `min_iters` calls and MIN_SECONDS."""
    for _ in range(warmup):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < MIN_SECONDS:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def setup_torch(threads):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    info = machine_info(torch)
    if not any(k in info["blas"].lower() for k in ("openblas", "mkl", "blis")):
        print("peer_torch: torch uses the reference BLAS; pass --blas-dir for a fair peer",
              file=sys.stderr)
    return torch, info


def gemm_worker(args):
    torch, info = setup_torch(args.threads)
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if args.precision not in (None, precision):
            continue
        a = torch.randn(GEMM_N, GEMM_N).to(dtype)
        b = torch.randn(GEMM_N, GEMM_N).to(dtype)
        median, iters = median_time(lambda: torch.matmul(a, b))
        print(json.dumps({
            "peer": "pytorch", "mode": "gemm", "precision": precision, "N": GEMM_N,
            "threads": args.threads, "median_s": round(median, 6),
            "gflops": round(2 * GEMM_N ** 3 / median / 1e9, 1), "iters": iters,
        } | info), flush=True)


def worker(args):
    import transformers
    from transformers import BertForSequenceClassification, BertModel

    torch, info = setup_torch(args.threads)
    transformers.logging.set_verbosity_error()  # "newly initialized classifier" is expected
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    if args.mode == "forward":
        model = BertModel.from_pretrained(args.model)
    else:
        model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2)
    B, T = args.batch, args.seq_len
    ids = torch.randint(1000, 30000, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    labels = torch.randint(0, 2, (B,))

    if args.mode == "forward":
        model.eval()
        trainable = 0

        def step():
            with torch.no_grad(), autocast:
                model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    else:
        model.train()
        for name, p in model.named_parameters():
            p.requires_grad = trains(args.mode, name)
        params = [p for p in model.parameters() if p.requires_grad]
        trainable = sum(p.numel() for p in params)
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            with autocast:
                logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
                loss = loss_fn(logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

    reset = reset_peak_rss()
    base_rss = current_rss_mib()
    median, iters = median_time(step, args.warmup, args.min_iters)
    print(json.dumps({
        "peer": "pytorch", "mode": args.mode, "shape": args.shape, "model": Path(args.model).name,
        "precision": args.precision, "B": B, "T": T, "threads": args.threads,
        "median_s": round(median, 6), "tokens_per_s": round(B * T / median, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1), "base_rss_mib": round(base_rss, 1),
        "peak_rss_reset": reset, "iters": iters, "trainable_params": trainable,
    } | info), flush=True)


def run_fresh(args, extra):
    """Runs this script as a worker with `extra` arguments in a fresh process; echoes its JSON."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker",
           "--threads", str(args.threads), "--warmup", str(args.warmup), "--min-iters", str(args.min_iters)] + extra
    # Keep OpenMP/MKL from starting more threads than torch is told to use.
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    if args.blas_dir:
        if not (Path(args.blas_dir) / "libblas.so.3").is_file():
            sys.exit(f"peer_torch: no libblas.so.3 in --blas-dir {args.blas_dir}")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(Path(args.blas_dir).resolve())] + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(out.strip(), flush=True)


def run_step(args, mode, shape, B, T, precision, model=None):
    run_fresh(args, ["--mode", mode, "--shape", shape, "--batch", str(B), "--seq-len", str(T),
                     "--precision", precision, "--model", str(model or MODEL_DIRS[shape])])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=MODES, default="forward")
    ap.add_argument("--shape", choices=list(MODEL_DIRS), default="minilm")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--precision", choices=PRECISIONS,
                    help="a step's precision (default fp32); with --gemm-peak, only this one (default both)")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--warmup", type=int, default=WARMUP, help="untimed steps before timing")
    ap.add_argument("--min-iters", type=int, default=MIN_ITERS, help="timed steps at least (and 5 s)")
    ap.add_argument("--model", help="model directory for a single run (default: models/"
                    "all-MiniLM-L6-v2 for --shape minilm, models/bert-base-uncased for base)")
    ap.add_argument("--blas-dir", help="directory with an optimised libblas.so.3 for the workers")
    ap.add_argument("--all", action="store_true", help="run the standard grid")
    ap.add_argument("--gemm-peak", action="store_true",
                    help=f"measure torch.matmul {GEMM_N}^3 GFLOP/s in fp32 and bf16")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch < 1 or not 1 <= args.seq_len <= 512:
        ap.error("need --batch >= 1 and 1 <= --seq-len <= 512")
    if args.all and args.model:
        ap.error("--model applies to a single run; the grid uses each shape's default directory")
    if args.worker:
        (gemm_worker if args.gemm_peak else worker)(args)
        return
    if args.gemm_peak:
        run_fresh(args, ["--gemm-peak"] + (["--precision", args.precision] if args.precision else []))
    if args.all:
        for shape, B, T in GRID:
            for precision in PRECISIONS:
                for mode in MODES:
                    run_step(args, mode, shape, B, T, precision)
    elif not args.gemm_peak:
        run_step(args, args.mode, args.shape, args.batch, args.seq_len, args.precision or "fp32", args.model)


if __name__ == "__main__":
    main()
