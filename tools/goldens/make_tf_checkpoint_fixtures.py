#!/usr/bin/env python3
"""Tiny TensorFlow tensor-bundle checkpoints, written by TensorFlow itself, for test_tf_checkpoint.

Regenerate (from the repository root, after scripts/setup-python, which installs tensorflow-cpu
into .venv):
    .venv/bin/python tools/goldens/make_tf_checkpoint_fixtures.py [--out tests/data/tf_checkpoint]

Bundles (each is <prefix>.index plus <prefix>.data-NNNNN-of-MMMMM):
    single/ckpt    tf.raw_ops.SaveV2, one shard: float32 of shapes [3, 4], [4], [] (a scalar),
                   [0, 3] (empty), [2, 3, 2], an int64 scalar "global_step" and a DT_STRING [2]
    sharded/ckpt   two SaveV2 bundles merged by tf.raw_ops.MergeV2Checkpoints: two shards
    object/ckpt-1  tf.train.Checkpoint (TF2 object-based): two variables, a step counter and the
                   "_CHECKPOINTABLE_OBJECT_GRAPH" string tensor
expected.json      for every bundle, every tensor: dtype name, shape and (numeric tensors) values
                   in row-major order, as TensorFlow's own reader (tf.train.load_checkpoint) returns
                   them; the test compares against these.

Values are small seeded numbers so the files stay a few hundred bytes.
"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2


def save_v2(prefix, tensors):
    names = list(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def describe(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    dtypes, shapes = reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()
    out = {}
    for name in sorted(dtypes):
        entry = {"dtype": types_pb2.DataType.Name(dtypes[name].as_datatype_enum), "shape": list(shapes[name])}
        if dtypes[name] != tf.string:
            entry["values"] = np.asarray(reader.get_tensor(name)).reshape(-1).tolist()
        out[name] = entry
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/tf_checkpoint")
    out = Path(ap.parse_args().out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(20240607)

    def floats(*shape):
        return np.round(rng.standard_normal(shape), 3).astype(np.float32)

    save_v2(out / "single" / "ckpt", {
        "dense/kernel": floats(3, 4),
        "dense/bias": floats(4),
        "scale": np.float32(0.5),
        "empty": floats(0, 3),
        "layer_0/attention/self/query/kernel": floats(2, 3, 2),
        "global_step": np.int64(1234567890123),
        "vocab": np.array([b"hello", b"world!"]),
    })

    tmp = out / "tmp"
    save_v2(tmp / "part0", {"encoder/weight": floats(2, 2), "encoder/bias": floats(2)})
    save_v2(tmp / "part1", {"head/weight": floats(3, 2), "step": np.int64(7)})
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=[str(tmp / "part0"), str(tmp / "part1")],
                                  destination_prefix=str(out / "sharded" / "ckpt"))
    shutil.rmtree(tmp, ignore_errors=True)

    ckpt = tf.train.Checkpoint(w=tf.Variable(floats(2, 3)), b=tf.Variable(floats(3)),
                               step=tf.Variable(np.int64(42)))
    saved = ckpt.write(str(out / "object" / "ckpt-1"))
    for stray in (out / "object").glob("checkpoint"):
        stray.unlink()

    expected = {
        "single/ckpt": describe(out / "single" / "ckpt"),
        "sharded/ckpt": describe(out / "sharded" / "ckpt"),
        "object/ckpt-1": describe(saved),
    }
    lines = []  # one tensor per line keeps diffs readable
    for bundle, tensors in expected.items():
        body = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in tensors.items())
        lines.append(f" {json.dumps(bundle)}: {{\n{body}\n }}")
    (out / "expected.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    for f in sorted(out.rglob("*")):
        if f.is_file():
            print(f, f.stat().st_size)


if __name__ == "__main__":
    main()
