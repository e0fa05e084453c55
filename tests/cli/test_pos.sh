#!/usr/bin/env bash
# `bitfit train -t pos` end to end (issue #11): a short real run on UD English-EWT writes a
# per-token patch and metrics.json with word accuracy on dev (every word) and on test at the best
# epoch; `bitfit evaluate` re-scores the patch to the same figures and `bitfit predict` writes the
# CoNLL-U input with the tag column filled (the same accuracy); bad folders, flags and files give
# one-line errors naming the file and line.
#   test_pos.sh BITFIT MODEL_DIR DATA_DIR
set -uo pipefail
bitfit=$1 model=$2 data=$3
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/common.sh"

ud=$data/ud_english_ewt
# A short real run: 256 training sentences, one epoch, UPOS.
"$bitfit" train -t pos -m "$model" --data-dir "$ud" -o "$tmp/run" --max-train-examples 256 -e 1 -b 16 -l 1e-3 \
  --head-learning-rate 1e-2 --no-train-eval 2>"$tmp/train.err" || fail "train pos: $(tail -3 "$tmp/train.err")"
python3 - "$tmp/run/metrics.json" "$tmp/run/patch.safetensors" "$model" <<'PY' || fail "pos metrics or patch (above)"
import json, struct, sys
m = json.load(open(sys.argv[1]))
assert m["task"] == "pos" and m["tagset"] == "UPOS", m["task"]
best = m["best"]
# Every word of dev (25,147) and test (25,094) scored; far above the majority tag (NOUN, ~17%).
assert best["dev"]["words"] == 25147 and best["test"]["words"] == 25094, best
# A token head runs no pooler: its bias is neither trained nor listed. The biases: L layers x
# (bq bk bv bm1 bLN1: 5H, bm2: I, bm3 bLN2: 2H) + the embedding LayerNorm's H; the head C x (H + 1).
assert "pooler" not in m["bias_terms"].split(), m["bias_terms"]
cfg = json.load(open(sys.argv[3] + "/config.json"))
L, H, I, C = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"], 17
assert m["trained_parameters"] == L * (7 * H + I) + H + C * (H + 1), m["trained_parameters"]
assert 0.5 < best["dev"]["accuracy"] <= 1 and 0.5 < best["test"]["accuracy"] <= 1, best
raw = open(sys.argv[2], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert meta["head"] == "token" and meta["task"] == "pos", meta
assert len(json.loads(meta["labels"])) == 17, meta["labels"]
assert meta["tagset"] == "UPOS", meta
PY

# evaluate re-scores dev and test to the figures of metrics.json (same predictions, same words).
patch=$tmp/run/patch.safetensors
for split in dev test; do
  "$bitfit" evaluate -m "$model" --patch "$patch" --data-dir "$ud" --split $split >"$tmp/eval-$split.json" \
    2>"$tmp/eval.err" || fail "evaluate --split $split: $(cat "$tmp/eval.err")"
done
# predict tags dev.conllu: its accuracy line is evaluate's; only the UPOS column of word lines
# changes; an unlabelled copy (UPOS "_") gets the same tags and no accuracy line.
"$bitfit" predict -m "$model" --patch "$patch" --input "$ud/en_ewt-ud-dev.conllu" --output "$tmp/dev.conllu" \
  >"$tmp/predict.out" 2>"$tmp/predict.err" || fail "predict dev.conllu: $(cat "$tmp/predict.err")"
awk -F'\t' 'BEGIN{OFS="\t"} NF == 10 && $1 ~ /^[0-9]+$/ {$4 = "_"} {print}' "$ud/en_ewt-ud-dev.conllu" >"$tmp/blank.conllu"
"$bitfit" predict -m "$model" --patch "$patch" --input "$tmp/blank.conllu" --output "$tmp/blank-tagged.conllu" \
  >"$tmp/predict-blank.out" 2>"$tmp/predict.err" || fail "predict unlabelled: $(cat "$tmp/predict.err")"
python3 - "$tmp" "$ud/en_ewt-ud-dev.conllu" <<'PY' || fail "evaluate/predict disagree with training (above)"
import json, sys
tmp, gold_file = sys.argv[1], sys.argv[2]
m = json.load(open(f"{tmp}/run/metrics.json"))["best"]
for split in ("dev", "test"):
    e = json.loads(open(f"{tmp}/eval-{split}.json").read())
    assert e["task"] == "pos" and e["tagset"] == "UPOS" and e["split"] == split and e["words_cut"] == 0, e
    assert e["words"] == m[split]["words"] and abs(e["accuracy"] - m[split]["accuracy"]) < 1e-12, (e, m[split])
line = open(f"{tmp}/predict.out").read().strip()
assert line == f'accuracy {m["dev"]["accuracy"]:.4f}, words {m["dev"]["words"]}', (line, m["dev"])
assert open(f"{tmp}/predict-blank.out").read() == "", "an unlabelled input printed an accuracy"
gold, out, blank = (open(f, encoding="utf-8").read().split("\n") for f in
                    (gold_file, f"{tmp}/dev.conllu", f"{tmp}/blank-tagged.conllu"))
assert len(gold) == len(out) == len(blank)
right = words = 0
for g, o, b in zip(gold, out, blank):
    if g.count("\t") != 9 or not g.split("\t")[0].isdigit():
        assert g == o == b, (g, o)  # comments, blank lines, multiword tokens, empty nodes: as they were
        continue
    gs, os_, bs = g.split("\t"), o.split("\t"), b.split("\t")
    assert gs[:3] + gs[4:] == os_[:3] + os_[4:] and os_ == bs, (g, o, b)
    words += 1
    right += gs[3] == os_[3]
assert words == m["dev"]["words"] and abs(right / words - m["dev"]["accuracy"]) < 1e-12, (right, words)
PY
expect_error "predict --tagset xpos with a UPOS patch" "a UPOS tagger, not XPOS" -- \
  "$bitfit" predict -m "$model" --patch "$patch" --input "$tmp/blank.conllu" --output "$tmp/x.conllu" --tagset xpos
# --logits: the head's outputs on every token (what scripts/check-merge compares with HF), the
# tags unchanged by asking for them; merge: a BertForTokenClassification directory, no pooler.
"$bitfit" predict -m "$model" --patch "$patch" --input "$tmp/blank.conllu" --output "$tmp/logits-tagged.conllu" \
  --logits "$tmp/tokens.npy" >/dev/null 2>"$tmp/predict.err" || fail "predict --logits: $(cat "$tmp/predict.err")"
"$bitfit" merge -m "$model" --patch "$patch" --output "$tmp/merged" 2>"$tmp/merge.err" || fail "merge a tagger: $(cat "$tmp/merge.err")"
python3 - "$tmp" <<'PY' || fail "predict --logits or merge of a tagger (above)"
import ast, json, struct, sys
tmp = sys.argv[1]
assert open(f"{tmp}/logits-tagged.conllu").read() == open(f"{tmp}/blank-tagged.conllu").read()
words = json.load(open(f"{tmp}/run/metrics.json"))["best"]["dev"]["words"]
raw = open(f"{tmp}/tokens.npy", "rb").read()
n = struct.unpack_from("<H", raw, 8)[0]
header = ast.literal_eval(raw[10:10 + n].decode())
rows, tags = header["shape"]
sentences = sum(1 for line in open(f"{tmp}/blank.conllu") if line.startswith("# text ="))
assert header["descr"] == "<f4" and tags == 17 and len(raw) == 10 + n + 4 * rows * tags, header
assert rows >= words + 2 * sentences, (rows, words, sentences)  # every word's pieces, [CLS] and [SEP]
c = json.load(open(f"{tmp}/merged/config.json"))
assert c["architectures"] == ["BertForTokenClassification"] and c["finetuning_task"] == "pos" and c["tagset"] == "UPOS", c
assert len(c["id2label"]) == 17 and c["label2id"][c["id2label"]["16"]] == 16 and "problem_type" not in c, c
with open(f"{tmp}/merged/model.safetensors", "rb") as f:
    names = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
assert "classifier.weight" in names and "bert.embeddings.word_embeddings.weight" in names, sorted(names)[:5]
assert not any(n.startswith("bert.pooler.") for n in names), "a pooler in a token classifier"
PY
printf '1\tHello\n' >"$tmp/bad.conllu"
expect_error "predict a malformed CoNLL-U file" "bad.conllu:1:" -- \
  "$bitfit" predict -m "$model" --patch "$patch" --input "$tmp/bad.conllu" --output "$tmp/x.conllu"
[[ ! -e $tmp/x.conllu ]] || fail "a refused predict left an output file"

# Refusals: a bad tag set, a folder without CoNLL-U, a malformed line, a tag unknown to train.
expect_error "a bad --tagset" "--tagset must be one of upos, xpos" -- \
  "$bitfit" train -t pos -m "$model" --data-dir "$ud" -o "$tmp/r" --tagset feats
expect_error "no CoNLL-U files" "no *-ud-train.conllu" -- "$bitfit" train -t pos -m "$model" --data-dir "$tmp" -o "$tmp/r"
mkdir "$tmp/ud"
head -n 60 "$ud/en_ewt-ud-dev.conllu" >"$tmp/ud/x-ud-train.conllu"
cp "$tmp/ud/x-ud-train.conllu" "$tmp/ud/x-ud-test.conllu"
printf '1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_\n2\tworld\n\n' >"$tmp/ud/x-ud-dev.conllu"
expect_error "a malformed CoNLL-U line" "x-ud-dev.conllu:2:" -- "$bitfit" train -t pos -m "$model" --data-dir "$tmp/ud" -o "$tmp/r"
printf '1\tHello\thello\tNOPE\tUH\t_\t0\troot\t_\t_\n\n' >"$tmp/ud/x-ud-dev.conllu"
expect_error "a tag that train does not have" "x-ud-dev.conllu:1:" -- \
  "$bitfit" train -t pos -m "$model" --data-dir "$tmp/ud" -o "$tmp/r"

finish pos
