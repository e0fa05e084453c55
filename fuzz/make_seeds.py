#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from real files: the TensorFlow-made fixtures in
tests/data/tf_checkpoint, the fetched models (models/all-MiniLM-L6-v2, BERT-base), the shared GLUE
data ($BITFIT_DATA_DIR, else ../shared/data) and runs/*/patch.safetensors when present. What is
missing is skipped; the hand-made seeds below are always written.

    python3 fuzz/make_seeds.py OUT_DIR    (scripts/fuzz runs it; standard library only)

OUT_DIR/fuzz_tf_checkpoint/<bundle>: 4-byte little-endian index length, the index, shard 0's data.
OUT_DIR/fuzz_tf_bundle_entry/<bundle>-<n>: each value of each index (header and entry protos),
read by a minimal LevelDB table walk (the fixtures are trusted, so nothing is validated here).
OUT_DIR/fuzz_safetensors/*: small files of every dtype, MiniLM's real header over tiny shapes.
OUT_DIR/fuzz_patch/*: patches for the target's tiny backbone (H=8, I=16, L=2; backbone id 64 'a's):
a real patch's metadata and tensor names over tiny shapes, regression, full, 7 classes.
OUT_DIR/fuzz_config/*: the models' config.json files, SavedModel model.json, nesting at the bound.
OUT_DIR/fuzz_vocab/*: tokenizer_config.json NUL vocab.txt (the first 1,200 lines of a real vocab).
OUT_DIR/fuzz_tokenizer/*: mode byte, max_length byte, text (GLUE sentences, [SEP], combining
marks, CJK, invalid UTF-8).
OUT_DIR/fuzz_glue_tsv/*: the first 12 lines of every GLUE file.
OUT_DIR/fuzz_conllu/*: the first 3 sentences of each UD English-EWT file (one with a multiword
token and one with an empty node from dev), CRLF and BOM variants.
"""
import json
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
DATA = Path(os.environ.get("BITFIT_DATA_DIR") or ROOT.parent / "shared" / "data")


def varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def block_entries(buf, offset, size):
    block = buf[offset:offset + size]
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end, pos, key = len(block) - 4 - 4 * restarts, 0, b""
    while pos < end:
        shared, pos = varint(block, pos)
        unshared, pos = varint(block, pos)
        vlen, pos = varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def table_values(buf):
    footer = buf[-48:]
    _, pos = varint(footer, 0)
    _, pos = varint(footer, pos)
    index_offset, pos = varint(footer, pos)
    index_size, _ = varint(footer, pos)
    for _, handle in block_entries(buf, index_offset, index_size):
        offset, pos = varint(handle, 0)
        size, _ = varint(handle, pos)
        for _, value in block_entries(buf, offset, size):
            yield value


def safetensors(tensors, metadata=None):
    """A safetensors file: tensors is a list of (name, dtype, shape, raw bytes)."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + blob


def f32(n, start=0.0):
    return struct.pack("<%df" % n, *[start + 0.25 * i for i in range(n)])


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tf_seeds(out):
    fixtures = ROOT / "tests" / "data" / "tf_checkpoint"
    for index in sorted(fixtures.rglob("*.index")):
        name = index.parent.name
        shard0 = sorted(index.parent.glob(index.stem + ".data-00000-of-*"))[0]
        buf = index.read_bytes()
        (out / "fuzz_tf_checkpoint" / name).write_bytes(struct.pack("<I", len(buf)) + buf + shard0.read_bytes())
        for n, value in enumerate(table_values(buf)):
            (out / "fuzz_tf_bundle_entry" / f"{name}-{n}").write_bytes(value)


def real_header(path):
    """The JSON header of a safetensors file, without reading its data."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(size))


def safetensors_seeds(d):
    sizes = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
    (d / "dtypes").write_bytes(safetensors(
        [(f"t.{dt.lower()}", dt, [2, 3], bytes(range(6 * size))) for dt, size in sizes.items()], {"format": "pt"}))
    (d / "empty").write_bytes(safetensors([]))
    (d / "scalar_and_zero").write_bytes(safetensors([("s", "F32", [], f32(1)), ("z", "F32", [0, 4], b"")]))
    (d / "unaligned").write_bytes(safetensors([("b", "U8", [3], b"abc"), ("w", "F32", [2, 2], f32(4))]))
    minilm = MODELS / "all-MiniLM-L6-v2" / "model.safetensors"
    if minilm.exists():
        # MiniLM's real names, dtypes and metadata, each tensor cut to at most 4 elements.
        tensors = []
        for name, t in real_header(minilm).items():
            if name == "__metadata__":
                continue
            shape = [min(x, 2) for x in t["shape"]]
            tensors.append((name, t["dtype"], shape, f32(numel(shape))))
        (d / "minilm_tiny").write_bytes(safetensors(tensors, real_header(minilm).get("__metadata__", {"format": "pt"})))


TINY_H, TINY_I, TINY_L = 8, 16, 2
BACKBONE = "a" * 64


def tiny_bias_shape(name):
    return [TINY_I] if name.endswith("intermediate.dense.bias") else [TINY_H]


def tiny_bias_names():
    names = []
    for layer in range(TINY_L):
        p = f"encoder.layer.{layer}."
        names += [p + s for s in ("attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias",
                                  "attention.output.dense.bias", "attention.output.LayerNorm.bias",
                                  "intermediate.dense.bias", "output.dense.bias", "output.LayerNorm.bias")]
    return names + ["embeddings.LayerNorm.bias", "pooler.dense.bias"]


def patch(meta, names, classes, **changes):
    meta = dict(meta, backbone_id=BACKBONE, **changes)
    tensors = [(n, "F32", tiny_bias_shape(n), f32(numel(tiny_bias_shape(n)), 0.5)) for n in names]
    tensors += [("classifier.weight", "F32", [classes, TINY_H], f32(classes * TINY_H)),
                ("classifier.bias", "F32", [classes], f32(classes, -0.25))]
    return safetensors(tensors, meta)


def patch_seeds(d):
    meta = {"format": "bitfit-patch/2", "kind": "bias", "task": "sst2", "fine_tune_type": "bitfit",
            "bias_terms": "query intermediate", "labels": '["0","1"]', "num_labels": "2",
            "first_trainable_layer": "0", "extra": "{}"}
    names = [n for n in tiny_bias_names() if "query" in n or "intermediate" in n]
    for real in sorted((ROOT / "runs").glob("*/patch.safetensors")):
        # A real patch's metadata and tensor names (layers beyond the tiny backbone's dropped).
        header = real_header(real)
        meta = header["__metadata__"]
        names = [n for n in header if n in tiny_bias_names()]
        break
    (d / "real_sst2").write_bytes(patch(meta, names, 2))
    (d / "rte_all").write_bytes(patch(meta, tiny_bias_names(), 2, task="rte", labels='["entailment","not_entailment"]'))
    (d / "stsb_regression").write_bytes(patch(meta, names, 1, task="stsb", labels="[]", num_labels="1"))
    (d / "seven_classes").write_bytes(patch(meta, names[:2], 7, labels=json.dumps(list("abcdefg")), num_labels="7"))
    (d / "head_only_full").write_bytes(patch(meta, [], 2, kind="full", fine_tune_type="full_ft"))
    full = [("pooler.dense.weight", "F32", [TINY_H, TINY_H], f32(TINY_H * TINY_H))]
    (d / "full_weight").write_bytes(safetensors(full + [("classifier.weight", "F32", [2, TINY_H], f32(2 * TINY_H)),
                                                        ("classifier.bias", "F32", [2], f32(2))],
                                                dict(meta, kind="full", backbone_id=BACKBONE)))


def config_seeds(d):
    for cfg in sorted(MODELS.glob("*/config.json")) + sorted(MODELS.glob("*/assets/*.json")):
        (d / (cfg.parent.name + "-" + cfg.name)).write_bytes(cfg.read_bytes())
    tiny = {"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 16, "vocab_size": 50, "max_position_embeddings": 16, "type_vocab_size": 2,
            "pad_token_id": 0, "layer_norm_eps": 1e-12, "hidden_act": "gelu_new", "position_embedding_type": "absolute"}
    (d / "tiny.json").write_text(json.dumps(tiny))
    # Nesting at the bound (64 levels are accepted, 65 are not) and far beyond it.
    (d / "depth64.json").write_text('{"a":' + "[" * 63 + "]" * 63 + "}")
    (d / "depth65.json").write_text('{"a":' + "[" * 64 + "]" * 64 + "}")
    (d / "deep.json").write_text('{"hidden_size":' + "[" * 100000 + "]" * 100000 + "}")


def vocab_lines(limit=1200):
    for vocab in (MODELS / "all-MiniLM-L6-v2" / "vocab.txt", MODELS / "bert-base-cased" / "vocab.txt"):
        if vocab.exists():
            yield vocab.parent.name, b"".join(vocab.read_bytes().splitlines(keepends=True)[:limit])


def vocab_seeds(d):
    small = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##ing\nworld\n,\n\xe4\xb8\xad\n"
    (d / "small_no_config").write_bytes(small)
    (d / "small_crlf").write_bytes(small.replace(b"\n", b"\r\n"))
    (d / "custom_specials").write_bytes(json.dumps({"unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>",
                                                    "cls_token": "<s>", "mask_token": {"content": "<mask>"}}).encode()
                                        + b"\0<pad>\n<unk>\n<s>\n</s>\n<mask>\nhi\n##s\n")
    for name, lines in vocab_lines():
        for cfg in sorted(MODELS.glob(name + "/tokenizer_config.json")):
            (d / (name + "-with-config")).write_bytes(cfg.read_bytes() + b"\0" + lines)
        (d / (name + "-no-config")).write_bytes(lines)
        (d / (name + "-cased")).write_bytes(b'{"do_lower_case": false, "strip_accents": null}\0' + lines)


def glue_files():
    return sorted((DATA / "glue").glob("*/*.tsv")) if (DATA / "glue").is_dir() else []


def tokenizer_seeds(d):
    texts = [b"Hello, world! [SEP] [CLS] [MASK] [UNK] unaffable ##ing",
             "naïve café résumé Ångström ﬁ Ⅻ".encode(),
             "中文字符 日本語 한국어 mixed中text".encode(),
             "e\u0301" .encode() * 200,                      # alternating base letters and combining marks
             "\u0301\u0302\u0303".encode() * 200,          # combining marks alone
             b"[SEP]" * 2000, b"[SEP" * 1000, b"[" * 3000,
             b"x" * 300, b"supercalifragilistic" * 20,    # words past max_input_chars_per_word
             b"\xff\xfe invalid \xc3 utf-8 \xe4\xb8", b"\t\n\r \x00\x01 control\x7f",
             "emoji 😀👍🏽 and ZWJ 👩‍👩‍👧".encode()]
    for tsv in glue_files():
        if tsv.parent.name in ("SST-2", "RTE") and tsv.name == "dev.tsv":
            texts += tsv.read_bytes().splitlines()[1:6]
    for i, text in enumerate(texts):
        for mode in range(8):  # bit 0: pair (split at a tab); bits 1-2: casing mode
            pair = mode & 1
            body = text if not pair or b"\t" in text else text[: len(text) // 2] + b"\t" + text[len(text) // 2:]
            (d / f"text{i:02d}-mode{mode}").write_bytes(bytes([mode, 61 if i % 2 else 125]) + body)


def glue_seeds(d):
    for tsv in glue_files():
        lines = tsv.read_bytes().splitlines(keepends=True)[:12]
        (d / f"{tsv.parent.name}-{tsv.stem}").write_bytes(b"".join(lines))
    (d / "sst2_crlf").write_bytes(b"sentence\tlabel\r\ngood\t1\r\nbad\t0\r\n")
    (d / "stsb_scores").write_bytes(b"index\tsentence1\tsentence2\tscore\n0\ta\tb\t5.000\n1\tc\td\t-1e38\n")


def conllu_seeds(d):
    word = "{}\t{}\t{}\t{}\t{}\t_\t0\troot\t0:root\t_\n"
    small = ("# sent_id = s1\n# text = I didn't.\n" + word.format(1, "I", "I", "PRON", "PRP")
             + "2-3\tdidn't\t_\t_\t_\t_\t_\t_\t_\t_\n" + word.format(2, "did", "do", "AUX", "VBD")
             + word.format(3, "n't", "not", "PART", "RB") + "3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t2:conj\t_\n"
             + word.format(4, ".", ".", "PUNCT", ".") + "\n").encode()
    (d / "multiword_empty_node").write_bytes(small)
    (d / "crlf_bom").write_bytes(b"\xef\xbb\xbf" + small.replace(b"\n", b"\r\n"))
    ewt = DATA / "ud_english_ewt"
    for split in ("train", "dev", "test"):
        path = ewt / "en_ewt-ud-{}.conllu".format(split)
        if not path.exists():
            continue
        blocks = path.read_bytes().split(b"\n\n")
        (d / ("ewt-" + split)).write_bytes(b"\n\n".join(blocks[:3]) + b"\n\n")
        if split == "dev":
            special = [next(b for b in blocks if b"\n1-2\t" in b), next(b for b in blocks if b"\n8.1\t" in b)]
            (d / "ewt-dev-special").write_bytes(b"\n\n".join(special) + b"\n")


def main():
    out = Path(sys.argv[1])
    seeders = {"fuzz_tf_checkpoint": None, "fuzz_tf_bundle_entry": None, "fuzz_safetensors": safetensors_seeds,
               "fuzz_patch": patch_seeds, "fuzz_config": config_seeds, "fuzz_vocab": vocab_seeds,
               "fuzz_tokenizer": tokenizer_seeds, "fuzz_glue_tsv": glue_seeds,
               "fuzz_conllu": conllu_seeds}
    for target in seeders:
        (out / target).mkdir(parents=True, exist_ok=True)
    tf_seeds(out)
    for target, seeder in seeders.items():
        if seeder:
            seeder(out / target)


if __name__ == "__main__":
    main()
