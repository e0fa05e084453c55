#!/usr/bin/env bash
# The `bitfit` command line as scripts use it: every error is one line on stderr with a non-zero
# exit; tokenize and encode produce what they promise; a short real training run writes a patch
# from which `bitfit predict` reproduces the dev accuracy in metrics.json exactly, on the model and
# on the `bitfit convert`ed copy of it.
# With the serve_tasks example given, it serves the same patch twice on one backbone and must
# agree with `bitfit predict`.
#   test_cli.sh BITFIT MODEL_DIR DATA_DIR [SERVE_TASKS]
set -uo pipefail
bitfit=$1 model=$2 data=$3 serve=${4:-}
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/common.sh"

# craft_patch SRC DST TASK NUM_LABELS LABELS_JSON BIAS: SRC's bias tensors and metadata with another
# task, num_labels and label list, and a head of NUM_LABELS outputs: the last one BIAS, the others 0
# (so a classifier predicts its last class).
craft_patch() {
  python3 - "$@" <<'PY'
import json, struct, sys
src, dst, task, n, labels, bias = sys.argv[1:7]
n, raw = int(n), open(src, "rb").read()
size = struct.unpack_from("<Q", raw)[0]
header, data = json.loads(raw[8:8 + size]), raw[8 + size:]
meta, hidden = header.pop("__metadata__"), header["classifier.weight"]["shape"][1]
tensors, blob = {}, b""
def add(name, entry, chunk):
    global blob
    tensors[name] = dict(entry, data_offsets=[len(blob), len(blob) + len(chunk)])
    blob += chunk
for name, entry in header.items():
    if not name.startswith("classifier."):
        add(name, entry, data[entry["data_offsets"][0]:entry["data_offsets"][1]])
add("classifier.weight", {"dtype": "F32", "shape": [n, hidden]}, bytes(4 * n * hidden))
add("classifier.bias", {"dtype": "F32", "shape": [n]}, struct.pack("<%df" % n, *[0.0] * (n - 1), float(bias)))
meta.update(task=task, num_labels=str(n), labels=labels)
text = json.dumps(dict(tensors, __metadata__=meta)).encode()
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + blob)
PY
}

mkdir "$tmp/bad" && printf 'sentence\tlabel\nfine\t1\nno label here\n' | tee "$tmp/bad/train.tsv" >"$tmp/bad/dev.tsv"
printf '\x89PNG not a patch' >"$tmp/bad.safetensors"
expect_error "unknown command" "unknown command 'frobnicate'" -- "$bitfit" frobnicate
expect_error "unknown flag" "--frobnicate" -- "$bitfit" tokenize --model "$model" --frobnicate
expect_error "missing required flag" "--output-path is required" -- "$bitfit" train --task sst2 --model "$model"
expect_error "a scalar flag given twice" "--epochs given more than once" -- \
  "$bitfit" train -t sst2 -m "$model" -o "$tmp/r" --epochs 2 --epochs 3
expect_error "unknown model name" "run scripts/fetch-model bert-tiny-nope" -- \
  "$bitfit" train -t sst2 -m bert-tiny-nope -o "$tmp/r"
expect_error "learning rates both 0" "nothing would train" -- \
  "$bitfit" train -t sst2 --data-dir "$data/glue/SST-2" -m "$model" -o "$tmp/r" -l 0 --head-learning-rate 0
expect_error "learning rates all 0" "nothing would train" -- \
  "$bitfit" train -t sst2 --data-dir "$data/glue/SST-2" -m "$model" -o "$tmp/r" -l 0 --head-learning-rate 0 \
  --attention-learning-rate 0
expect_error "frozen with the head's rate 0" "frozen trains the head only, and head_learning_rate is 0" -- \
  "$bitfit" train -t sst2 --data-dir "$data/glue/SST-2" -m "$model" -o "$tmp/r" -f frozen --head-learning-rate 0
expect_error "group rates under full_ft" "full_ft: the attention, mlp and layernorm learning rates apply to bitfit's bias terms only" -- \
  "$bitfit" train -t sst2 --data-dir "$data/glue/SST-2" -m "$model" -o "$tmp/r" -f full_ft --mlp-learning-rate 1e-4
expect_error "group rates under frozen" "frozen trains the head only" -- \
  "$bitfit" train -t sst2 --data-dir "$data/glue/SST-2" -m "$model" -o "$tmp/r" -f frozen --layernorm-learning-rate 1e-4
expect_error "negative group rate" "--attention-learning-rate must be in [0" -- \
  "$bitfit" train -t sst2 --data-dir "$data/glue/SST-2" -m "$model" -o "$tmp/r" --attention-learning-rate=-1e-3
expect_error "non-integer flag" "--epochs expects an integer, got 'abc'" -- \
  "$bitfit" train --task sst2 --data-dir "$data/glue/SST-2" --model "$model" --output-path "$tmp/r" --epochs abc
expect_error "unknown task" "unknown GLUE task 'nope'" -- \
  "$bitfit" train --task nope --data-dir "$data/glue/SST-2" --model "$model" --output-path "$tmp/r"
expect_error "unknown bias term" "unknown term 'bz'" -- \
  "$bitfit" train --task sst2 --data-dir "$data/glue/SST-2" --model "$model" --output-path "$tmp/r" --bias-terms bz
expect_error "missing model" "/nonexistent" -- "$bitfit" tokenize --model /nonexistent
expect_error "unwritable output" "/nonexistent/x.npy" -- "$bitfit" encode --model "$model" --output /nonexistent/x.npy
expect_error "malformed TSV" "bad/train.tsv:3" -- \
  "$bitfit" train --task sst2 --data-dir "$tmp/bad" --model "$model" --output-path "$tmp/r"
expect_error "corrupt patch" "bad.safetensors" -- \
  "$bitfit" predict --model "$model" --patch "$tmp/bad.safetensors" --input "$data/glue/SST-2/dev.tsv" --output "$tmp/p.tsv"
expect_error "unknown precision" "precision 'fp16' is not one of fp32, bf16, auto" -- \
  "$bitfit" encode --model "$model" --output "$tmp/e.npy" --precision fp16
# An AVX2-only CPU, as oneDNN sees it when capped: bf16 is refused with the reason, auto is fp32.
expect_error "bf16 without bf16 hardware" "needs oneDNN and a CPU with AVX512-BF16 or AMX" -- \
  env ONEDNN_MAX_CPU_ISA=AVX2 "$bitfit" encode --model "$model" --output "$tmp/e.npy" --precision bf16
printf 'a b\n' | ONEDNN_MAX_CPU_ISA=AVX2 "$bitfit" encode --model "$model" --output "$tmp/auto.npy" --precision auto 2>/dev/null ||
  fail "encode --precision auto on a capped CPU exited non-zero"

# tokenize: ids of the uncased vocabulary, [CLS] ... [SEP], pairs with --pair.
got=$(printf 'hello world\nnaïve café\n' | "$bitfit" tokenize --model "$model")
[[ "$got" == $'101 7592 2088 102\n101 15743 7668 102' ]] || fail "tokenize: got '$got'"
got=$(printf 'hello\tworld\n' | "$bitfit" tokenize --model "$model" --pair)
[[ "$got" == "101 7592 102 2088 102" ]] || fail "tokenize --pair: got '$got'"

# encode: a float32 .npy of shape (lines, hidden).
printf 'a\nb c\nd e f\n' | "$bitfit" encode --model "$model" --output "$tmp/e.npy" --pool mean 2>/dev/null || fail "encode exited non-zero"
header=$(head -c 128 "$tmp/e.npy" | tr -d '\0')
[[ "$header" == *"'descr': '<f4'"* && "$header" == *"'shape': (3, 384)"* ]] || fail "encode: header '$header'"

# A short real run, then predict from the patch alone: the same dev accuracy, to the example.
"$bitfit" train --task sst2 --data-dir "$data/glue/SST-2" --model "$model" --output-path "$tmp/run" \
  --max-train-examples 1024 --epochs 1 --batch-size 16 --seed 7 2>"$tmp/train.err" || fail "train: $(tail -3 "$tmp/train.err")"
[[ -f "$tmp/run/patch.safetensors" && -f "$tmp/run/metrics.json" ]] || fail "train wrote no patch or metrics"
"$bitfit" predict --model "$model" --patch "$tmp/run/patch.safetensors" --input "$data/glue/SST-2/dev.tsv" \
  --output "$tmp/pred.tsv" >"$tmp/pred.out" 2>&1 || fail "predict: $(cat "$tmp/pred.out")"
want=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["epoch"][-1]["dev"]["accuracy"] * 872))' "$tmp/run/metrics.json")
right=$(paste <(awk -F'\t' 'NR > 1 { print $NF }' "$data/glue/SST-2/dev.tsv") <(awk -F'\t' 'NR > 1 { print $2 }' "$tmp/pred.tsv") |
        awk '$1 == $2 { n++ } END { print n + 0 }')
classes=$(awk -F'\t' 'NR > 1 { print $2 }' "$tmp/pred.tsv" | sort -u | tr '\n' ' ')
[[ "$classes" == "0 1 " ]] || fail "predict: the short run predicts only class(es) $classes"
[[ "$right" == "$want" ]] || fail "predict: $right/872 right, train's dev accuracy says $want"

# A value that starts with "--" passes as --name=value (an output file named "--pred.tsv").
(cd "$tmp" && "$bitfit" predict -m "$model" --patch run/patch.safetensors --input "$data/glue/SST-2/dev.tsv" \
  --output=--pred.tsv >/dev/null 2>&1) || fail "predict --output=--pred.tsv failed"
cmp -s "$tmp/pred.tsv" "$tmp/--pred.tsv" || fail "predict --output=--pred.tsv: not the same predictions"

# Hostile patches (issue #7): heads that disagree with their labels or their task are refused
# before anything is indexed by class id (a 7-class head on rte read past rte's 2 labels; a
# 1-output head on sst2 turned 1e30 into a label index).
if [[ -f "$tmp/run/patch.safetensors" ]]; then
  seven='["a","b","c","d","e","f","g"]' rte='["entailment","not_entailment"]'
  craft_patch "$tmp/run/patch.safetensors" "$tmp/rte7.safetensors" rte 7 "$seven" 1 || fail "craft_patch failed"
  craft_patch "$tmp/run/patch.safetensors" "$tmp/rte7x2.safetensors" rte 7 "$rte" 1
  craft_patch "$tmp/run/patch.safetensors" "$tmp/sst2x1.safetensors" sst2 1 '[]' 1e30
  craft_patch "$tmp/run/patch.safetensors" "$tmp/nope.safetensors" nope 2 '["0","1"]' 0
  expect_error "predict, a 7-class head on rte" "rte7.safetensors: its head has 7 outputs" -- \
    "$bitfit" predict --model "$model" --patch "$tmp/rte7.safetensors" --input "$data/glue/RTE/dev.tsv" --output "$tmp/p.tsv"
  expect_error "predict, num_labels 7 with 2 labels" "num_labels 7 disagrees with its 2 labels" -- \
    "$bitfit" predict --model "$model" --patch "$tmp/rte7x2.safetensors" --input "$data/glue/RTE/dev.tsv" --output "$tmp/p.tsv"
  expect_error "predict, a regression head on sst2" "its head has 1 output (regression) but task sst2 has 2" -- \
    "$bitfit" predict --model "$model" --patch "$tmp/sst2x1.safetensors" --input "$data/glue/SST-2/dev.tsv" --output "$tmp/p.tsv"
  expect_error "predict, an unknown task in the patch" "nope.safetensors: unknown GLUE task 'nope'" -- \
    "$bitfit" predict --model "$model" --patch "$tmp/nope.safetensors" --input "$data/glue/SST-2/dev.tsv" --output "$tmp/p.tsv"
  if [[ -n "$serve" ]]; then
    expect_error "serve_tasks, a 7-class head on rte" "rte7.safetensors: its head has 7 outputs" -- \
      "$serve" "$model" "$tmp/rte7.safetensors"
  fi
fi

# convert: an HF directory rewritten as one; the patch still applies (backbone identity is over
# the weights, not the file) and predicts exactly the same.
expect_error "convert, not a model" "not a BERT model" -- "$bitfit" convert --model "$tmp/bad" --output "$tmp/c"
expect_error "convert into a non-empty folder" "already exists" -- "$bitfit" convert --model "$model" --output "$tmp/bad"
expect_error "convert, bad --hidden-act" "--hidden-act" -- "$bitfit" convert --model "$model" --output "$tmp/c" --hidden-act relu
"$bitfit" convert --model "$model" --output "$tmp/conv" 2>"$tmp/conv.err" || fail "convert: $(cat "$tmp/conv.err")"
"$bitfit" predict --model "$tmp/conv" --patch "$tmp/run/patch.safetensors" --input "$data/glue/SST-2/dev.tsv" \
  --output "$tmp/pred_conv.tsv" >/dev/null 2>"$tmp/pred_conv.err" || fail "predict on the converted model: $(cat "$tmp/pred_conv.err")"
cmp -s "$tmp/pred.tsv" "$tmp/pred_conv.tsv" || fail "the converted model predicts differently"

if [[ -n "$serve" ]]; then
  awk -F'\t' 'NR > 1 && NR <= 21 { print $1 }' "$data/glue/SST-2/dev.tsv" >"$tmp/lines"
  "$serve" "$model" "$tmp/run/patch.safetensors" "$tmp/run/patch.safetensors" <"$tmp/lines" >"$tmp/served" 2>"$tmp/serve.err" ||
    fail "serve_tasks: $(cat "$tmp/serve.err")"
  want=$(awk -F'\t' 'NR > 1 && NR <= 21 { print NR - 2 "\t" $2; print NR - 2 "\t" $2 }' "$tmp/pred.tsv")
  got=$(cut -f1,3 "$tmp/served")
  [[ "$got" == "$want" ]] || fail "serve_tasks disagrees with bitfit predict: $(diff <(echo "$want") <(echo "$got") | head -5)"
  expect_error "serve_tasks, corrupt patch" "bad.safetensors" -- "$serve" "$model" "$tmp/bad.safetensors"
fi

# Per-group learning rates on 32 examples: recorded in metrics.json, reaching their biases (the
# attention biases at rate 0 leave the patch as the model has them), and checked on --resume.
mkdir "$tmp/sst_small" && head -33 "$data/glue/SST-2/train.tsv" >"$tmp/sst_small/train.tsv" &&
  head -17 "$data/glue/SST-2/dev.tsv" >"$tmp/sst_small/dev.tsv"
tiny=(train -t sst2 --data-dir "$tmp/sst_small" -m "$model" --epochs 1 --batch-size 8 --no-train-eval)
small=("${tiny[@]}" -o "$tmp/groups")
groups=("${small[@]}" --attention-learning-rate 0 --mlp-learning-rate 2e-3 --layernorm-learning-rate 5e-4)
"$bitfit" "${groups[@]}" 2>"$tmp/groups.err" || fail "train with group rates: $(tail -3 "$tmp/groups.err")"
python3 - "$tmp/groups/metrics.json" "$tmp/groups/patch.safetensors" "$model/model.safetensors" <<'PY' || fail "group rates: metrics.json or patch (above)"
import json, os, re, struct, sys
metrics = json.load(open(sys.argv[1]))
want = {"learning_rate": 1e-3, "head_learning_rate": 1e-3, "attention_learning_rate": 0.0,
        "mlp_learning_rate": 2e-3, "layernorm_learning_rate": 5e-4}
got = {k: metrics.get(k) for k in want}
assert got == want, "metrics.json records %s, expected %s" % (got, want)
def tensors(path):
    raw = open(path, "rb").read()
    size = struct.unpack_from("<Q", raw)[0]
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    return {re.sub(r"^bert\.", "", k): raw[8 + size + v["data_offsets"][0]:8 + size + v["data_offsets"][1]]
            for k, v in header.items()}
if not os.path.exists(sys.argv[3]):
    sys.exit(0)  # a TF checkpoint: no safetensors file to compare the patch with
patch, model = tensors(sys.argv[2]), tensors(sys.argv[3])
attention = re.compile(r"attention\.(self\.(query|key|value)|output\.dense)\.bias$")
biases = [k for k in patch if not k.startswith("classifier.")]
moved = [k for k in biases if patch[k] != model[k]]
layers = len({m.group(1) for m in map(re.compile(r"layer\.(\d+)\.").search, biases) if m})
assert len(biases) == 8 * layers + 2, "the patch holds %d biases" % len(biases)
assert not [k for k in moved if attention.search(k)], "attention biases at rate 0 moved: %s" % moved
assert len(moved) == len(biases) - 4 * layers, "%d biases moved: %s" % (len(moved), moved)
PY
"$bitfit" "${groups[@]}" --resume 2>"$tmp/resume.err" && grep -q "already holds the finished run" "$tmp/resume.err" ||
  fail "resume with the same group rates: $(cat "$tmp/resume.err")"
expect_error "resume with another group rate" "mlp_learning_rate: was 0.002, now 0.001" -- \
  "$bitfit" "${small[@]}" --attention-learning-rate 0 --mlp-learning-rate 1e-3 --layernorm-learning-rate 5e-4 --resume
# A run recorded before the group rates trained every bias at its learning_rate (and, before
# --train-eval-examples, scored all of train; before --adam-epsilon, used 1e-8).
python3 - "$tmp/groups/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for k in ("attention_learning_rate", "mlp_learning_rate", "layernorm_learning_rate", "train_eval_examples", "adam_epsilon"):
    del m[k]
json.dump(m, open(sys.argv[1], "w"))
PY
"$bitfit" "${small[@]}" --resume 2>"$tmp/resume.err" && grep -q "already holds the finished run" "$tmp/resume.err" ||
  fail "resume of a run recorded without group rates: $(cat "$tmp/resume.err")"
expect_error "resume of a run recorded without group rates, with one" "attention_learning_rate: was 0.001, now 0" -- \
  "$bitfit" "${groups[@]}" --resume

# --adam-epsilon (the original's transformers AdamW: 1e-6): recorded, checked on --resume, and it
# reaches the update (a large one damps it: the patch differs from the default's).
"$bitfit" "${tiny[@]}" -o "$tmp/eps" --adam-epsilon 1e-2 2>"$tmp/eps.err" || fail "train with --adam-epsilon: $(tail -3 "$tmp/eps.err")"
python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["adam_epsilon"] == 1e-2' "$tmp/eps/metrics.json" ||
  fail "--adam-epsilon not recorded"
"$bitfit" "${tiny[@]}" -o "$tmp/eps_default" 2>/dev/null || fail "train with the default epsilon"
cmp -s "$tmp/eps/patch.safetensors" "$tmp/eps_default/patch.safetensors" && fail "--adam-epsilon did not change the update"
expect_error "resume with another epsilon" "adam_epsilon: was 0.01, now 1e-08" -- "$bitfit" "${tiny[@]}" -o "$tmp/eps" --resume
expect_error "--adam-epsilon 0" "--adam-epsilon must be positive" -- "$bitfit" "${tiny[@]}" -o "$tmp/eps0" --adam-epsilon 0

# --train-eval-examples: train scored on a seeded sample of 10 of the 32, recorded in metrics.json
# (and so checked on --resume); it contradicts --no-train-eval.
all_train=(train -t sst2 --data-dir "$tmp/sst_small" -m "$model" -o "$tmp/sample" --epochs 1 --batch-size 8)
sample=("${all_train[@]}" --train-eval-examples 10)
"$bitfit" "${sample[@]}" 2>"$tmp/sample.err" || fail "train with --train-eval-examples: $(tail -3 "$tmp/sample.err")"
python3 - "$tmp/sample/metrics.json" <<'PY' || fail "--train-eval-examples: metrics.json (above)"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["train_eval_examples"] == 10 and m["train_scored_examples"] == 10 and m["train_examples"] == 32, m
assert "accuracy" in m["epoch"][0]["train"], m["epoch"][0]
PY
expect_error "resume scoring all of train" "train_eval_examples: was 10, now 0" -- "$bitfit" "${all_train[@]}" --resume
expect_error "--train-eval-examples with --no-train-eval" "give one" -- "$bitfit" "${sample[@]}" --no-train-eval

# scripts/lib/train-args.sh (train-sst2, rte-grid): the caller's flags, long, short or --flag=value,
# replace the scripts' defaults instead of repeating them (which bitfit train refuses).
(
  source "$(dirname "$0")/../../scripts/lib/train-args.sh"
  train_args_given -e2 --learning-rate=5e-4 --no-train-eval -s 7
  train=(--task sst2)
  for d in "--epochs 1" "--learning-rate 1e-3" "--batch-size 32" "--seed 42" "--linear-decay"; do train_arg $d; done
  [[ "${train[*]}" == "--task sst2 --batch-size 32 --linear-decay" ]] || fail "train-args.sh: defaults left: ${train[*]}"
  exit "$failures"
) || fail "scripts/lib/train-args.sh (above)"

finish cli "dev $right/872 reproduced from the patch"
