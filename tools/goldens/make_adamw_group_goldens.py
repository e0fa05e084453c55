#!/usr/bin/env python3
"""Reference trajectories of torch.optim.AdamW with one parameter group per learning-rate group.

Regenerate (from the repository root, after scripts/setup-python):
    .venv/bin/python tools/goldens/make_adamw_group_goldens.py [--out tests/data/adamw_groups]

The bias tensors of a one-layer BertForSequenceClassification (hidden 4, intermediate 6, 2
labels), named as HF names them, plus the classifier, in float32 (the trainer's precision) with
seeded N(0, 1) values, get STEPS optimizer steps, each with a fresh seeded gradient (set as .grad
before the step). Each tensor is in the parameter group of its BitFit group, by the paper's
notation (Ben-Zaken et al. 2022, §2), and each group has its own lr:
    attention   bq, bk, bv, bm1 (attention.self.{query,key,value}, attention.output.dense)
    mlp         bm2, bm3 (intermediate.dense, output.dense)
    layernorm   bLN1, bLN2 (attention.output.LayerNorm, output.LayerNorm), embeddings.LayerNorm
    backbone    pooler.dense: no group of its own, the biases' default rate
    head        classifier.weight, classifier.bias
This table is written here independently of the library's (bitfit::lr_group_of), so that the
test also checks the library's grouping.

Cases (betas (0.9, 0.999), eps 1e-8, amsgrad off, foreach off; every case shares the initial
values and the gradients):
    nodecay       the RATES below, weight_decay 0
    decay         the RATES below, weight_decay 0.01
    frozen_group  the RATES below with attention's lr 0, weight_decay 0.01: the attention biases
                  stay bit for bit as they were

Output per case folder (little-endian float32 .npy; <i> is the tensor's index in meta.json):
    param<i>_init.npy     shape S_i, the values before the first step
    grad<i>.npy           (STEPS, *S_i), the gradient set before step s
    param<i>.npy          (STEPS, *S_i), the values after step s
    meta.json             hyper-parameters, the rates, and per tensor its name, shape, group, lr
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
H, I, C = 4, 6, 2
LAYER = "bert.encoder.layer.0."
TENSORS = [  # (HF name, shape), in HF order
    (LAYER + "attention.self.query.bias", (H,)),
    (LAYER + "attention.self.key.bias", (H,)),
    (LAYER + "attention.self.value.bias", (H,)),
    (LAYER + "attention.output.dense.bias", (H,)),
    (LAYER + "attention.output.LayerNorm.bias", (H,)),
    (LAYER + "intermediate.dense.bias", (I,)),
    (LAYER + "output.dense.bias", (H,)),
    (LAYER + "output.LayerNorm.bias", (H,)),
    ("bert.embeddings.LayerNorm.bias", (H,)),
    ("bert.pooler.dense.bias", (H,)),
    ("classifier.weight", (C, H)),
    ("classifier.bias", (C,)),
]
GROUPS = [  # (group, pattern over the HF name), first match wins
    ("head", r"^classifier\."),
    ("layernorm", r"LayerNorm\.bias$"),
    ("attention", r"attention\.(self\.(query|key|value)|output\.dense)\.bias$"),
    ("mlp", r"layer\.\d+\.(intermediate|output)\.dense\.bias$"),
    ("backbone", r"^bert\.pooler\.dense\.bias$"),
]
RATES = {"backbone": 1e-3, "attention": 3e-3, "mlp": 5e-4, "layernorm": 2e-3, "head": 1e-2}
STEPS = 3
BETAS, EPS = (0.9, 0.999), 1e-8
GRAD_SCALE = 0.1

CASES = {
    "nodecay": {"weight_decay": 0.0, "rates": {}},
    "decay": {"weight_decay": 0.01, "rates": {}},
    "frozen_group": {"weight_decay": 0.01, "rates": {"attention": 0.0}},
}

UPDATE_RULE = (
    "per parameter group with its own lr; t = step (1-based); p *= 1 - lr * weight_decay; "
    "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; "
    "p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)")


def group_of(name):
    for group, pattern in GROUPS:
        if re.search(pattern, name):
            return group
    raise ValueError("no learning-rate group for " + name)


def run_case(spec, init, grads):
    rates = dict(RATES, **spec["rates"])
    params = [torch.tensor(p, dtype=torch.float32, requires_grad=True) for p in init]
    groups = {}
    for (name, _), p in zip(TENSORS, params):
        groups.setdefault(group_of(name), []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "lr": rates[g]} for g, ps in groups.items()],
                            lr=RATES["backbone"], betas=BETAS, eps=EPS,
                            weight_decay=spec["weight_decay"], amsgrad=False, foreach=False)
    after = [[] for _ in params]
    for step in range(STEPS):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g[step], dtype=torch.float32)
        opt.step()
        for i, p in enumerate(params):
            after[i].append(p.detach().numpy().copy())
    return rates, [np.stack(a) for a in after]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "adamw_groups"))
    args = ap.parse_args()
    out = Path(args.out)

    rng = np.random.default_rng(2025)
    init = [rng.standard_normal(s).astype(np.float32) for _, s in TENSORS]
    grads = [(rng.standard_normal((STEPS,) + s) * GRAD_SCALE).astype(np.float32) for _, s in TENSORS]
    f32 = lambda a: np.ascontiguousarray(a, dtype="<f4")
    summary = {}
    for case, spec in CASES.items():
        rates, after = run_case(spec, init, grads)
        cdir = out / case
        cdir.mkdir(parents=True, exist_ok=True)
        for i in range(len(TENSORS)):
            np.save(cdir / "param{}_init.npy".format(i), f32(init[i]))
            np.save(cdir / "grad{}.npy".format(i), f32(grads[i]))
            np.save(cdir / "param{}.npy".format(i), f32(after[i]))
        meta = {
            "torch": torch.__version__,
            "optimizer": "torch.optim.AdamW, one parameter group per learning-rate group",
            "rates": rates, "betas": list(BETAS), "eps": EPS, "weight_decay": spec["weight_decay"],
            "amsgrad": False, "maximize": False, "foreach": False,
            "steps": STEPS,
            "dtype": "float32",
            "tensors": [{"name": name, "shape": list(shape), "group": group_of(name),
                         "lr": rates[group_of(name)]} for name, shape in TENSORS],
            "init": "numpy.random.default_rng(2025): N(0,1) params in order, then N(0,1) "
                    "gradients (STEPS, *shape) per tensor, scaled by grad_scale; float32",
            "grad_scale": GRAD_SCALE,
            "update_rule": UPDATE_RULE,
        }
        (cdir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        summary[case] = {g: float(max(np.abs(a[-1] - p0).max()
                                      for (name, _), a, p0 in zip(TENSORS, after, init)
                                      if group_of(name) == g)) for g in RATES}
    top = {"cases": CASES, "rates": RATES,
           "groups": {name: group_of(name) for name, _ in TENSORS},
           "max_abs_change_per_group": summary}
    (out / "meta.json").write_text(json.dumps(top, indent=2) + "\n")
    print(json.dumps(top, indent=1))


if __name__ == "__main__":
    main()
