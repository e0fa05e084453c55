#!/usr/bin/env python3
"""Reference values of the GLUE metrics (include/bitfit/train/metrics.hpp) from scikit-learn and SciPy.

Regenerate (from the repository root; Debian's python3-sklearn and python3-scipy suffice,
`apt-get install -y python3-sklearn python3-scipy`, or .venv/bin/python after scripts/setup-python):
    /usr/bin/python3 tools/goldens/make_metric_goldens.py [--out tests/data/metrics/goldens.json]

Every input value is a float32 (the C++ functions take std::span<const float>), written exactly;
the metrics are computed on the float64 copies:
    accuracy   sklearn.metrics.accuracy_score
    f1         sklearn.metrics.f1_score (binary, pos_label=1, default zero_division: 0 when undefined)
    mcc        sklearn.metrics.matthews_corrcoef
    pearson    scipy.stats.pearsonr(...)[0]
    spearmanr  scipy.stats.spearmanr(...)[0]  (average ranks for ties)
A NaN result is written as null. Where scipy raises instead (pearsonr of a single pair), the
value is null too and the case's "note" says so: bitfit returns NaN there.
"""
import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import scipy
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

REPO = Path(__file__).resolve().parents[2]
SEED = 20220509


def cases(rng):
    """(name, predictions, golds, metric names) with float32 inputs."""
    f32 = lambda v: np.asarray(v, dtype=np.float32)
    classes = lambda n, k: f32(rng.integers(0, k, n))
    binary = ["accuracy", "f1", "mcc"]
    real = ["pearson", "spearmanr"]
    gold = classes(200, 2)
    noisy = np.where(rng.random(200) < 0.8, gold, 1 - gold).astype(np.float32)
    sts_gold = f32(np.round(rng.uniform(0, 5, 300) * 5) / 5)  # STS-B steps of 0.2: many ties
    sts_pred = f32(np.round((sts_gold + rng.normal(0, 0.8, 300)) * 2) / 2)  # steps of 0.5
    yield "random_binary", classes(101, 2), classes(101, 2), binary + real
    yield "binary_80pct", noisy, gold, binary + real
    yield "binary_ties", f32([1, 1, 1, 0, 0, 1, 1, 1]), f32([1, 0, 1, 0, 1, 1, 0, 1]), binary + real
    yield "constant_predictions", f32([1] * 12), classes(12, 2), binary + real
    yield "constant_zero_predictions", f32([0] * 9), f32([0, 1, 1, 0, 1, 0, 0, 1, 1]), binary
    yield "no_positive_gold", f32([0, 1, 0, 0, 1, 0]), f32([0] * 6), binary
    yield "no_positive_anywhere", f32([0] * 5), f32([0] * 5), binary + real
    yield "no_true_positive", f32([1, 1, 0, 0]), f32([0, 0, 1, 1]), binary
    yield "all_correct", gold[:50], gold[:50], binary + real
    yield "all_wrong", 1 - gold[:50], gold[:50], binary + real
    yield "multiclass_3", classes(150, 3), classes(150, 3), ["accuracy", "mcc"]
    mnli_gold = classes(120, 3)
    mnli_pred = np.where(rng.random(120) < 0.7, mnli_gold, classes(120, 3)).astype(np.float32)
    yield "multiclass_3_70pct", mnli_pred, mnli_gold, ["accuracy", "mcc"]
    yield "multiclass_pred_class_absent_in_gold", f32([0, 1, 2, 3, 1, 0]), f32([0, 1, 1, 0, 1, 0]), ["accuracy", "mcc"]
    yield "regression_random", f32(rng.normal(2.5, 1.2, 257)), f32(rng.uniform(0, 5, 257)), real
    yield "regression_many_ties", sts_pred, sts_gold, real
    yield "regression_anticorrelated", f32([5.0, 4.2, 3.1, 3.1, 1.0, 0.4]), f32([0.0, 1.2, 2.0, 2.6, 4.0, 5.0]), real
    yield "regression_constant_gold", f32(rng.uniform(0, 5, 10)), f32([3.2] * 10), real
    yield "regression_constant_prediction", f32([2.5] * 10), f32(rng.uniform(0, 5, 10)), real
    yield "length_1", f32([1]), f32([1]), binary + real
    yield "length_1_regression", f32([2.75]), f32([4.0]), real
    yield "length_2", f32([0, 1]), f32([1, 1]), binary + real
    yield "length_2_regression", f32([1.5, 3.25]), f32([4.0, 0.5]), real


def metric(name, p, g):
    """The reference value (None for NaN) and a note when scipy refuses the input."""
    p64, g64 = p.astype(np.float64), g.astype(np.float64)
    if name == "pearson" and len(p) < 2:
        return None, "scipy.stats.pearsonr raises for fewer than 2 values"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-input and undefined-metric warnings: expected here
        value = {
            "accuracy": lambda: accuracy_score(g64, p64),
            "f1": lambda: f1_score(g64, p64, pos_label=1),
            "mcc": lambda: matthews_corrcoef(g64, p64),
            "pearson": lambda: pearsonr(p64, g64)[0],
            "spearmanr": lambda: spearmanr(p64, g64)[0],
        }[name]()
    value = float(value)
    return (None if np.isnan(value) else value), None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests/data/metrics/goldens.json")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    out = []
    for name, p, g, metrics in cases(rng):
        assert p.dtype == np.float32 and g.dtype == np.float32 and len(p) == len(g)
        case = {"name": name, "predictions": [float(v) for v in p], "golds": [float(v) for v in g], "metrics": {}}
        notes = []
        for m in metrics:
            case["metrics"][m], note = metric(m, p, g)
            if note:
                notes.append(f"{m}: {note}")
        if notes:
            case["note"] = "; ".join(notes)
        out.append(case)
    doc = {
        "generator": "tools/goldens/make_metric_goldens.py",
        "versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__},
        "seed": SEED,
        "nan": "null",
        "cases": out,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One line per case: the file stays short and a diff shows which case changed.
    text = json.dumps(doc, indent=1).split('\n "cases"')[0]
    text += '\n "cases": [\n  ' + ",\n  ".join(json.dumps(c) for c in out) + "\n ]\n}\n"
    json.loads(text)
    args.out.write_text(text)
    print(f"wrote {len(out)} cases to {args.out}")


if __name__ == "__main__":
    main()
