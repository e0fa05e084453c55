#!/usr/bin/env python3
"""End-to-end: wall time of one BitFit epoch of BERT-base (batch 16) on real GLUE data, ours
against PyTorch, same machine, same run, one process at a time (2 threads each).

    cmake --build build --target bitfit_cli && scripts/setup-python
    .venv/bin/python bench/e2e.py --json runs/e2e.json                  # full epochs (hours)
    .venv/bin/python bench/e2e.py --peer-steps 32 --json runs/e2e.json  # peers on 32 steps each

Rows, for each task (rte: all 2,490 RTE train pairs; sst2-2k: the first 2,000 SST-2 sentences):
    ours fp32 / ours bf16   `bitfit train --epochs 1 --batch-size 16 --max-seq-length 128` with
                            dropout 0.1, AdamW lr 1e-3, clipping 1.0 (bf16 only where the CPU has
                            AVX512-BF16 or AMX); packed batches, no padding
    run_glue.py recipe      bench/e2e_torch.py --recipe runglue: every batch padded to 128
    dynamic padding         bench/e2e_torch.py --recipe dynamic: padded to the batch's longest
The epoch time compared is training alone (batching, forward, loss, backward, clipping, AdamW):
ours from metrics.json's epoch seconds, the peer's epoch_train_s. Model loading, tokenization
and our dev evaluation are reported beside it (whole-process wall time), not in the ratio. With
--peer-steps N the peers run N steps and their epoch time is extrapolated by padded tokens
(marked "extrapolated"); ours always runs the whole epoch.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="2")
TASKS = {"rte": ("RTE", "rte", 0), "sst2-2k": ("SST-2", "sst2", 2000)}


def run_ours(cli, data, model, task, precision, out_root):
    folder, name, limit = TASKS[task]
    out = out_root / f"{task}-{precision}"
    cmd = [str(cli), "train", "--task", name, "--data-dir", str(data / folder), "--model", str(model),
           "--output-path", str(out), "--epochs", "1", "--batch-size", "16", "--max-seq-length", "128", "--no-train-eval",
           "--dropout", "0.1", "--learning-rate", "1e-3", "--max-grad-norm", "1.0", "--precision", precision,
           "--seed", "0"]
    if limit:
        cmd += ["--max-train-examples", str(limit)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"e2e: {' '.join(cmd)} failed:\n{err}")
    m = json.loads((out / "metrics.json").read_text())
    epoch = m["epoch"][0]
    return {"engine": f"ours {precision}", "task": task, "epoch_train_s": epoch["seconds"], "wall_s": wall,
            "peak_rss_mib": usage.ru_maxrss / 1024.0, "train_loss": epoch["train_loss"],
            "dev_accuracy": epoch["dev"]["accuracy"], "train_tokens_per_s": epoch["tokens_per_s"],
            "extrapolated": False, "cpu": m.get("cpu"), "gemm_backend": m.get("gemm_backend")}


def run_peer(task, recipe, steps, model, data):
    cmd = [sys.executable, str(REPO / "bench" / "e2e_torch.py"), "--task", task, "--recipe", recipe,
           "--model", str(model), "--data-dir", str(data)]
    if steps:
        cmd += ["--max-steps", str(steps)]
    t0 = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV).stdout
    wall = time.monotonic() - t0
    r = json.loads(out.strip().splitlines()[-1])
    return {"engine": f"PyTorch {recipe}", "task": task, "epoch_train_s": r["epoch_train_s"], "wall_s": wall,
            "peak_rss_mib": r["peak_rss_mib"], "train_loss": r["mean_loss"], "dev_accuracy": None,
            "train_tokens_per_s": r["tokens_per_s"], "extrapolated": r["extrapolated"], "cpu": r["cpu_model"],
            "steps": r["steps"], "epoch_steps": r["epoch_steps"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--model", default=str(REPO / "models" / "bert-base-uncased"))
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "glue"))
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--peer-steps", type=int, default=0, help="run the peers for N steps and extrapolate (0: full epoch)")
    ap.add_argument("--json", help="append every row here as it is measured (JSON lines)")
    a = ap.parse_args()
    cli, data, model = Path(a.build) / "tools" / "bitfit", Path(a.data_dir), Path(a.model)
    out_root = REPO / "runs" / "e2e"
    rows = []
    for task in a.tasks:
        for p in a.precisions:
            rows.append(run_ours(cli, data, model, task, p, out_root))
            print(json.dumps(rows[-1]), file=sys.stderr)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
        for recipe in ("runglue", "dynamic"):
            rows.append(run_peer(task, recipe, a.peer_steps, model, data))
            print(json.dumps(rows[-1]), file=sys.stderr)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    print(f"CPU: {rows[0]['cpu']}, 2 threads\n")
    print("| task | engine | epoch train s | time / ours fp32 | process wall s | peak RSS MiB | train loss |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for task in a.tasks:
        ours = next((r for r in rows if r["task"] == task and r["engine"] == "ours fp32"), None)
        for r in (r for r in rows if r["task"] == task):
            ratio = f"{r['epoch_train_s'] / ours['epoch_train_s']:.2f}x" if ours else ""
            est = " (extrapolated)" if r["extrapolated"] else ""
            print(f"| {task} | {r['engine']} | {r['epoch_train_s']:.0f}{est} | {ratio} | {r['wall_s']:.0f} | "
                  f"{r['peak_rss_mib']:.0f} | {r['train_loss']:.4f} |")


if __name__ == "__main__":
    main()
