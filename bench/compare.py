#!/usr/bin/env python3
"""Runs our benchmarks and the PyTorch peer in the same session and prints the tables of
docs/PERFORMANCE.md (markdown). Every measurement runs in its own process, so peak RSS is its own.

    scripts/setup-python && cmake --build build --target bench_encoder bench_train
    .venv/bin/python bench/compare.py [--build build] [--json runs/bench.json]   (~30 min)

Grid: forward, bitfit, bitfit_bq_bm2, frozen and full_ft steps at BERT-base 16x64 and 32x128 and
MiniLM 32x64; ours with the frozen matrices in fp32 and in bf16 (full_ft only fp32: it trains
them), the peer in fp32 and under torch.autocast("cpu", dtype=torch.bfloat16). Ratios are ours /
peer for tokens/s (higher is better for us) and ours / peer for peak memory (lower is better).
GFLOP/s are model FLOPs of the step (bench_train.cpp's step_flops) over its time, beside the GEMM
peak the same binary measures at 1024^3.

    --precisions fp32       only the fp32 rows (and GEMM peaks)
    --isa-cap avx2          both sides limited to AVX2 + FMA kernels at run time, the instruction
                            set of this project's AVX2-only machines: oneDNN (ours and torch's) via
                            ONEDNN_MAX_CPU_ISA, OpenBLAS via OPENBLAS_CORETYPE=Haswell, ATen via
                            ATEN_CPU_CAPABILITY. Our own kernels are compiled for x86-64-v3 (AVX2)
                            anyway. bf16 needs AVX512-BF16 or AMX: use with --precisions fp32.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="2")
ISA_CAPS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
                     "ATEN_CPU_CAPABILITY": "avx2"}}
GRID = [("base", 16, 64), ("base", 32, 128), ("minilm", 32, 64)]
MODES = ["forward", "bitfit", "bitfit_bq_bm2", "frozen", "full_ft"]


def ours(binary, name):
    """The benchmark whose name starts with `name`/ (Google Benchmark appends its settings)."""
    out = subprocess.run([str(binary), f"--benchmark_filter=^{name}/", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True, env=ENV).stdout
    if not out.strip():  # no benchmark of that name here (bf16 without bf16 hardware, full_ft in bf16)
        return None
    doc = json.loads(out)
    if not doc["benchmarks"]:
        return None
    b = doc["benchmarks"][0]
    if b.get("error_occurred"):
        return None
    keys = ("tokens/s", "GFLOP/s", "peak_rss_MiB", "base_rss_MiB", "saved_floats_per_token")
    return {k: b.get(k) for k in keys} | {"real_time_ms": b["real_time"], "context": doc["context"]}


def peer(args):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "peer_torch.py"), "--warmup", "1", "--min-iters", "3"] + args,
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.strip().splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--json", help="also write every raw number here")
    ap.add_argument("--shapes", nargs="+", default=[f"{s}/{b}x{t}" for s, b, t in GRID],
                    help="a subset of the grid, e.g. base/16x64")
    ap.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    ap.add_argument("--isa-cap", choices=sorted(ISA_CAPS), help="limit both sides' kernels to this instruction set")
    a = ap.parse_args()
    if a.isa_cap:  # ours reads ENV, the peer's processes inherit os.environ
        ENV.update(ISA_CAPS[a.isa_cap])
        os.environ.update(ISA_CAPS[a.isa_cap])
    enc, tr = Path(a.build) / "bench" / "bench_encoder", Path(a.build) / "bench" / "bench_train"
    raw = {"gemm": {}, "steps": {}, "isa_cap": a.isa_cap}
    for backend in ("eigen_fp32", "onednn_fp32", "onednn_bf16"):
        if backend[-4:] in a.precisions:
            raw["gemm"][f"ours {backend}"] = ours(enc, f"BM_gemm/{backend}/1024")
    for r in peer(["--gemm-peak"] + (["--precision", a.precisions[0]] if len(a.precisions) == 1 else [])):
        raw["gemm"][f"PyTorch {r['precision']}"] = r
    context = raw["gemm"]["ours onednn_fp32" if "fp32" in a.precisions else "ours onednn_bf16"]["context"]

    caps = f"; capped at {a.isa_cap}: " + ", ".join(f"{k}={v}" for k, v in ISA_CAPS[a.isa_cap].items()) if a.isa_cap else ""
    print(f"CPU: {context.get('cpu_model')} ({context.get('cpu_features')}; oneDNN ISA {context.get('onednn_isa')}{caps}), "
          f"2 threads\n")
    print("| GEMM 1024^3 | GFLOP/s |\n|---|---:|")
    for name, v in raw["gemm"].items():
        g = None if v is None else (v["GFLOP/s"] / 1e9 if "GFLOP/s" in v else v["gflops"])
        print(f"| {name} | {'n/a' if g is None else f'{g:.0f}'} |")
    peak = {p: (raw["gemm"].get(f"ours onednn_{p}") or {}).get("GFLOP/s") for p in ("fp32", "bf16")}

    for shape, B, T in GRID:
        if f"{shape}/{B}x{T}" not in a.shapes:
            continue
        print(f"\n### {shape} {B}x{T}\n")
        print("| mode | precision | ours tok/s | GFLOP/s (% of GEMM peak) | PyTorch tok/s | ratio | ours peak RSS MiB (step adds) "
              "| PyTorch peak RSS MiB (step adds) | memory ratio |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for mode in MODES:
            for prec in a.precisions:
                o = ours(tr, f"BM_step/{mode}/{shape}/{B}x{T}/{prec}")
                p = peer(["--mode", mode, "--shape", shape, "--batch", str(B), "--seq-len", str(T), "--precision", prec])[-1]
                raw["steps"][f"{mode}/{shape}/{B}x{T}/{prec}"] = {"ours": o, "peer": p}
                pt, prss, pbase = p["tokens_per_s"], p["peak_rss_mib"], p["base_rss_mib"]
                if o is None:
                    print(f"| {mode} | {prec} | n/a | | {pt:.0f} | | | {prss:.0f} ({prss - pbase:.0f}) | |")
                    continue
                ot, orss, obase, gf = o["tokens/s"], o["peak_rss_MiB"], o["base_rss_MiB"] or 0, o["GFLOP/s"]
                pk = f" ({100 * gf * 1e9 / peak[prec]:.0f}%)" if peak.get(prec) else ""
                print(f"| {mode} | {prec} | {ot:.0f} | {gf:.0f}{pk} | {pt:.0f} | {ot / pt:.2f}x | {orss:.0f} ({orss - obase:.0f}) | "
                      f"{prss:.0f} ({prss - pbase:.0f}) | {orss / prss:.2f}x |", flush=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(raw, indent=2) + "\n")


if __name__ == "__main__":
    main()
