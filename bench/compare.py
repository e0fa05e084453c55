#!/usr/bin/env python3
"""Runs our benchmarks and the PyTorch peer in the same session and prints the comparison table
of docs/PERFORMANCE.md (markdown). Every mode runs in its own process, so peak RSS is per mode.

    scripts/setup-python && cmake --build build --target bench_encoder bench_train
    .venv/bin/python bench/compare.py [--build build] [--json out.json]

Ratios are ours / peer for tokens/s (higher is better for us) and ours / peer for memory.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="2")


def ours(binary, name):
    out = subprocess.run([str(binary), f"--benchmark_filter=^{name}(/|$)", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True, env=ENV).stdout
    b = json.loads(out)["benchmarks"][0]
    return {k: b.get(k) for k in ("tokens/s", "peak_rss_MiB", "base_rss_MiB", "saved_floats_per_token", "GFLOP/s")} | {
        "real_time_ms": b["real_time"]}


def peer(mode, shape, B, T):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "peer_torch.py"), "--mode", mode, "--shape", shape,
                          "--batch", str(B), "--seq-len", str(T)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--json", help="also write every raw number here")
    a = ap.parse_args()
    enc, tr = Path(a.build) / "bench" / "bench_encoder", Path(a.build) / "bench" / "bench_train"
    raw = {"sgemm_1024": ours(enc, "BM_sgemm/1024")}
    rows = []
    for shape, B, T in [("minilm", 32, 64), ("minilm", 8, 128), ("base", 32, 64), ("base", 8, 128)]:
        o, p = ours(enc, f"BM_forward/{shape}/{B}/{T}"), peer("forward", shape, B, T)
        rows.append(("forward", shape, B, T, o, p))
    for mode in ["forward", "bitfit", "bitfit_bq_bm2", "frozen", "full_ft"]:
        o = ours(tr, f"BM_step/{mode}")
        p = peer(mode, "minilm", 32, 64) if mode in ("forward", "bitfit", "full_ft") else None
        rows.append((f"train step: {mode}" if mode != "forward" else "forward + head", "minilm", 32, 64, o, p))
    print(f"Machine SGEMM (Eigen, 1024^3, 2 threads): {raw['sgemm_1024']['GFLOP/s'] / 1e9:.1f} GFLOP/s\n")
    print("| what | shape | B x T | ours tokens/s | PyTorch tokens/s | ratio | ours peak RSS MiB (step adds) | PyTorch peak RSS MiB (step adds) | memory ratio |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for what, shape, B, T, o, p in rows:
        ot, orss, obase = o["tokens/s"], o["peak_rss_MiB"], o.get("base_rss_MiB") or 0
        if p:
            pt, prss, pbase = p["tokens_per_s"], p["peak_rss_mib"], p["base_rss_mib"]
            print(f"| {what} | {shape} | {B}x{T} | {ot:.0f} | {pt:.0f} | {ot / pt:.2f}x | {orss:.0f} ({orss - obase:.0f}) | "
                  f"{prss:.0f} ({prss - pbase:.0f}) | {orss / prss:.2f}x |")
        else:
            print(f"| {what} | {shape} | {B}x{T} | {ot:.0f} | | | {orss:.0f} ({orss - obase:.0f}) | | |")
        raw[f"{what}/{shape}/{B}x{T}"] = {"ours": o, "peer": p}
    if a.json:
        Path(a.json).write_text(json.dumps(raw, indent=2) + "\n")


if __name__ == "__main__":
    main()
