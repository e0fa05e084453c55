#!/usr/bin/env python3
"""Reference trajectories of torch.optim.AdamW / Adam (and global-norm clipping) in float64.

Regenerate (from the repository root, after scripts/setup-python):
    .venv/bin/python tools/goldens/make_adamw_goldens.py [--out tests/data/adamw]

Three float64 parameter tensors of shapes (7,), (3, 5), (2,) with seeded N(0, 1) values get
STEPS optimizer steps, each with a fresh seeded gradient (set as .grad before the step). All
cases share the initial values; "decay", "nodecay" and "adam" also share the gradients.

Cases (lr 1e-3, betas (0.9, 0.999), eps 1e-8, amsgrad off, foreach off):
    decay    torch.optim.AdamW, weight_decay 0.01
    nodecay  torch.optim.AdamW, weight_decay 0
    adam     torch.optim.Adam, weight_decay 0
    clip     torch.optim.AdamW, weight_decay 0.01, with
             torch.nn.utils.clip_grad_norm_(params, 1.0) before each step; its gradients are
             larger so that the global norm exceeds 1 at every step

Output per case folder (little-endian float64 .npy; <i> is the parameter index 0..2):
    param<i>_init.npy     shape S_i, the values before the first step
    grad<i>.npy           (STEPS, *S_i), the gradient set before step s (before clipping)
    param<i>.npy          (STEPS, *S_i), the values after step s
    grad<i>_clipped.npy   clip only: (STEPS, *S_i), the gradient the optimizer saw
    total_norm.npy        clip only: (STEPS,), global L2 norm before clipping
    meta.json             hyper-parameters and the update rule
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
SHAPES = [(7,), (3, 5), (2,)]
STEPS = 5
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
GRAD_SCALE = 0.1  # global gradient norm about 0.5: below the clipping threshold
CLIP_GRAD_SCALE = 2.0  # global gradient norm about 10: always clipped
MAX_NORM = 1.0

CASES = {
    "decay": {"optimizer": "AdamW", "weight_decay": 0.01, "clip": False},
    "nodecay": {"optimizer": "AdamW", "weight_decay": 0.0, "clip": False},
    "adam": {"optimizer": "Adam", "weight_decay": 0.0, "clip": False},
    "clip": {"optimizer": "AdamW", "weight_decay": 0.01, "clip": True},
}

UPDATE_RULE = (
    "t = step (1-based); [AdamW only: p *= 1 - lr * weight_decay]; m = b1 m + (1 - b1) g; "
    "v = b2 v + (1 - b2) g^2; p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)")
CLIP_RULE = ("total = sqrt(sum of g^2 over all parameters); coef = max_norm / (total + 1e-6); "
             "if coef < 1: g *= coef (torch.nn.utils.clip_grad_norm_)")


def run_case(spec, init, grads):
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in init]
    opt_cls = torch.optim.AdamW if spec["optimizer"] == "AdamW" else torch.optim.Adam
    opt = opt_cls(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=spec["weight_decay"],
                  amsgrad=False, foreach=False)
    after = [[] for _ in params]
    clipped = [[] for _ in params]
    norms = []
    for step in range(STEPS):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g[step], dtype=torch.float64)
        if spec["clip"]:
            norms.append(torch.nn.utils.clip_grad_norm_(params, MAX_NORM).item())
            for i, p in enumerate(params):
                clipped[i].append(p.grad.detach().numpy().copy())
        opt.step()
        for i, p in enumerate(params):
            after[i].append(p.detach().numpy().copy())
    return [np.stack(a) for a in after], [np.stack(c) for c in clipped if c], norms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "adamw"))
    args = ap.parse_args()
    out = Path(args.out)

    rng = np.random.default_rng(2024)
    init = [rng.standard_normal(s) for s in SHAPES]
    base_grads = [rng.standard_normal((STEPS,) + s) for s in SHAPES]
    f64 = lambda a: np.ascontiguousarray(a, dtype="<f8")
    summary = {}
    trajectories = {}
    for case, spec in CASES.items():
        scale = CLIP_GRAD_SCALE if spec["clip"] else GRAD_SCALE
        grads = [g * scale for g in base_grads]
        after, clipped, norms = run_case(spec, init, grads)
        trajectories[case] = after
        cdir = out / case
        cdir.mkdir(parents=True, exist_ok=True)
        for i in range(len(SHAPES)):
            np.save(cdir / "param{}_init.npy".format(i), f64(init[i]))
            np.save(cdir / "grad{}.npy".format(i), f64(grads[i]))
            np.save(cdir / "param{}.npy".format(i), f64(after[i]))
            if spec["clip"]:
                np.save(cdir / "grad{}_clipped.npy".format(i), f64(clipped[i]))
        if spec["clip"]:
            if min(norms) <= MAX_NORM:
                raise RuntimeError("clip case: a gradient norm is not above max_norm")
            np.save(cdir / "total_norm.npy", f64(np.array(norms)))
        meta = {
            "torch": torch.__version__,
            "optimizer": "torch.optim." + spec["optimizer"],
            "lr": LR, "betas": list(BETAS), "eps": EPS, "weight_decay": spec["weight_decay"],
            "amsgrad": False, "maximize": False, "foreach": False,
            "steps": STEPS,
            "shapes": [list(s) for s in SHAPES],
            "dtype": "float64",
            "init": "numpy.random.default_rng(2024): N(0,1) params in order, then N(0,1) "
                    "gradients (STEPS, *shape) per parameter, scaled by grad_scale",
            "grad_scale": scale,
            "update_rule": UPDATE_RULE,
        }
        if spec["clip"]:
            meta.update({"clip_max_norm": MAX_NORM, "clip_norm_type": 2.0,
                         "clip_rule": CLIP_RULE, "total_norm": norms})
        (cdir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        summary[case] = {"max_abs_change": float(max(np.abs(a[-1] - p0).max()
                                                      for a, p0 in zip(after, init)))}
        if spec["clip"]:
            summary[case]["total_norm"] = norms

    adam_vs_adamw = max(np.abs(a - b).max()
                        for a, b in zip(trajectories["adam"], trajectories["nodecay"]))
    top = {"cases": {c: dict(s) for c, s in CASES.items()},
           "adam_vs_adamw_nodecay_max_abs_diff": float(adam_vs_adamw),
           "summary": summary}
    (out / "meta.json").write_text(json.dumps(top, indent=2) + "\n")
    print(json.dumps(top, indent=1))


if __name__ == "__main__":
    main()
