#!/usr/bin/env bash
# Every GLUE task end to end on a small subset (issue #9): bitfit train (dev and train scored
# each epoch, the task's metrics), --predict-test (the GLUE-server file: one row per test row,
# the task's label strings), bitfit evaluate re-scoring the saved patch to the same figures;
# MNLI and QQP from the hand-made fixtures in tests/data/glue, QNLI on its dev set (the data here
# has no QNLI train.tsv: training on it fails with one line naming the file). Then --resume after
# a kill -9 ends bit-identical to an uninterrupted run, and the plots render.
#   test_glue_tasks.sh BITFIT MODEL_DIR DATA_DIR FIXTURES_DIR
set -uo pipefail
bitfit=$1 model=$2 data=$3 fixtures=$4
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/common.sh"
small=(-m "$model" --max-train-examples 48 -e 1 -b 16 --max-seq-length 64 -s 3)

# QNLI: no train.tsv here. One line naming the missing file, then train on a copy of dev.
out=$("$bitfit" train -t qnli --data-dir "$data/glue/QNLI" -o "$tmp/q" "${small[@]}" 2>&1 >/dev/null)
[[ $? != 0 && $(wc -l <<<"$out") == 1 && "$out" == *"QNLI/train.tsv: not found"* ]] || fail "qnli without train.tsv: '$out'"
mkdir -p "$tmp/QNLI" && head -200 "$data/glue/QNLI/dev.tsv" >"$tmp/QNLI/train.tsv" &&
  head -100 "$data/glue/QNLI/dev.tsv" >"$tmp/QNLI/dev.tsv" && head -150 "$data/glue/QNLI/test.tsv" >"$tmp/QNLI/test.tsv"

declare -A dir=([sst2]=$data/glue/SST-2 [rte]=$data/glue/RTE [mrpc]=$data/glue/MRPC [cola]=$data/glue/CoLA
                [stsb]=$data/glue/STS-B [wnli]=$data/glue/WNLI [qnli]=$tmp/QNLI [mnli]=$fixtures/MNLI [qqp]=$fixtures/QQP)
declare -A metrics=([sst2]=accuracy [rte]=accuracy [mrpc]="accuracy f1" [cola]=mcc [stsb]="pearson spearmanr"
                    [wnli]=accuracy [qnli]=accuracy [mnli]=accuracy [qqp]="accuracy f1")
declare -A files=([sst2]=SST-2 [rte]=RTE [mrpc]=MRPC [cola]=CoLA [stsb]=STS-B [wnli]=WNLI [qnli]=QNLI
                  [mnli]="MNLI-m MNLI-mm" [qqp]=QQP)
declare -A labels=([sst2]="0 1" [rte]="entailment not_entailment" [mrpc]="0 1" [cola]="0 1" [wnli]="0 1"
                   [qnli]="entailment not_entailment" [mnli]="contradiction entailment neutral" [qqp]="0 1")
for task in sst2 rte mrpc cola stsb wnli qnli mnli qqp; do
  d=${dir[$task]} run=$tmp/$task
  if ! "$bitfit" train -t "$task" --data-dir "$d" -o "$run" "${small[@]}" --predict-test 2>"$run.err"; then
    fail "$task: train: $(tail -2 "$run.err")"; continue
  fi
  # metrics.json: every metric of the task for dev (MNLI: both) and train, in [-1, 1].
  python3 - "$run/metrics.json" "$task" ${metrics[$task]} <<'PY' || fail "$task: metrics.json"
import json, math, sys
m, task, names = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3:]
e = m["epoch"][-1]
splits = ["dev_matched", "dev_mismatched"] if task == "mnli" else ["dev"]
for s in splits + ["train"]:
    got = sorted(e[s])
    assert got == sorted(names), (s, got, names)
    for n in names:
        v = e[s][n]
        assert v is None or -1 <= v <= 1, (s, n, v)
assert m["finished"] and m["best_epoch"] == 1 and m["primary_metric"] in names
PY
  # The GLUE-server files: header, one row per test row (in order), the task's labels.
  for f in ${files[$task]}; do
    src=$d/test.tsv
    [[ $f == MNLI-m ]] && src=$d/test_matched.tsv
    [[ $f == MNLI-mm ]] && src=$d/test_mismatched.tsv
    pred=$run/test/$f.tsv
    [[ -f $pred ]] || { fail "$task: no $pred"; continue; }
    [[ $(head -1 "$pred") == $'index\tprediction' ]] || fail "$task: $f header '$(head -1 "$pred")'"
    [[ $(wc -l <"$pred") == $(wc -l <"$src") ]] || fail "$task: $f has $(wc -l <"$pred") lines, $src $(wc -l <"$src")"
    idcol=$(head -1 "$src" | tr '\t' '\n' | grep -nx 'index\|id' | head -1 | cut -d: -f1)
    cmp -s <(cut -f1 "$pred" | tail -n +2) <(cut -f"$idcol" "$src" | tail -n +2) || fail "$task: $f indices differ from $src"
    if [[ $task == stsb ]]; then
      bad=$(tail -n +2 "$pred" | cut -f2 | grep -cvE '^-?[0-9]+\.[0-9]{3}$')
    else
      bad=$(tail -n +2 "$pred" | cut -f2 | grep -cvxF -f <(tr ' ' '\n' <<<"${labels[$task]}"))
    fi
    [[ $bad == 0 ]] || fail "$task: $f has $bad predictions that are not labels of the task"
  done
  # bitfit evaluate from the saved patch: the dev figures of metrics.json, exactly.
  "$bitfit" evaluate -m "$model" --patch "$run/patch.safetensors" --data-dir "$d" --max-seq-length 64 \
    >"$run.eval" 2>"$run.eval.err" || fail "$task: evaluate: $(cat "$run.eval.err")"
  python3 - "$run/metrics.json" "$run.eval" <<'PY' || fail "$task: evaluate disagrees with training's dev scores"
import json, sys
e = json.load(open(sys.argv[1]))["epoch"][-1]
for line in open(sys.argv[2]):
    r = json.loads(line)
    for k, v in e[r["split"]].items():
        assert r[k] == v, (r["split"], k, r[k], v)
PY
done

# resumed LABEL OUT PATTERN SAVES ARGS...: `bitfit train ARGS` killed (-9) once it has saved its
# state, then run again with --resume, ends as an uninterrupted run does: OUT.safetensors and
# best-OUT.safetensors byte for byte, every epoch's train loss and dev scores, no state file left.
# PATTERN: what the resume message must say; SAVES: flags of the killed run and of its resume,
# not of the uninterrupted run (how often to save is not part of a run's identity).
resumed() {
  local label=$1 out=$2 pattern=$3 pid f
  local -a saves=($4)
  shift 4
  "$bitfit" train "$@" -o "$tmp/straight-$label" 2>/dev/null || { fail "resume $label: the uninterrupted run failed"; return; }
  "$bitfit" train "$@" "${saves[@]}" -o "$tmp/killed-$label" 2>/dev/null &
  pid=$!
  for _ in $(seq 600); do [[ -f $tmp/killed-$label/state.safetensors ]] && break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [[ -f $tmp/killed-$label/state.safetensors ]] || fail "resume $label: no state.safetensors before the kill"
  "$bitfit" train "$@" "${saves[@]}" -o "$tmp/killed-$label" --resume 2>"$tmp/resume.err" ||
    fail "resume $label: $(tail -1 "$tmp/resume.err")"
  grep -q "$pattern" "$tmp/resume.err" || fail "resume $label: no '$pattern' in: $(head -2 "$tmp/resume.err")"
  for f in "$out" "best-$out"; do
    cmp -s "$tmp/straight-$label/$f.safetensors" "$tmp/killed-$label/$f.safetensors" ||
      fail "resume $label: $f.safetensors differs from the uninterrupted run's"
  done
  python3 - "$tmp/straight-$label/metrics.json" "$tmp/killed-$label/metrics.json" <<'PY' || fail "resume $label: metrics differ (above)"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for x, y in zip(a["epoch"], b["epoch"], strict=True):
    assert x["train_loss"] == y["train_loss"] and x["dev"] == y["dev"], (x, y)
PY
  [[ ! -f $tmp/killed-$label/state.safetensors ]] || fail "resume $label: the finished run kept its state file"
}
# Killed after epoch 1: BitFit, and rand_uniform (whose state holds its subset's entries, and
# whose output is a full checkpoint).
res=(-t rte --data-dir "$data/glue/RTE" -m "$model" --max-train-examples 64 -e 3 -b 16 --max-seq-length 64 -s 5 --no-train-eval)
resumed bitfit patch "resuming" "" "${res[@]}" -f bitfit
resumed rand_uniform checkpoint "resuming" "" "${res[@]}" -f rand_uniform
# Killed within an epoch: --save-minutes (a save after every step here) keeps the position. 16
# steps an epoch, so that the kill lands mid-epoch.
mid=(-t rte --data-dir "$data/glue/RTE" -m "$model" --max-train-examples 32 -e 2 -b 2 --max-seq-length 64 -s 5 --no-train-eval)
resumed mid patch "resuming .* within epoch 1 after [0-9]* batches" "--save-minutes 1e-9" "${mid[@]}"
out=$("$bitfit" train "${res[@]}" -o "$tmp/killed-bitfit" -l 5e-4 --resume 2>&1 >/dev/null)
[[ $? != 0 && "$out" == *"learning_rate: was 0.001, now 0.0005"* ]] || fail "resume with other options: '$out'"

# Plots: SVG and PNG of each kind.
"$bitfit" plot curves --metrics "$tmp/mrpc/metrics.json" --output "$tmp/fig/mrpc" 2>"$tmp/plot.err" || fail "plot curves: $(cat "$tmp/plot.err")"
"$bitfit" plot bias-change -m "$model" --patch "$tmp/straight-bitfit/patch.safetensors" --output "$tmp/fig/bias" \
  --json "$tmp/fig/bias.json" 2>"$tmp/plot.err" || fail "plot bias-change: $(cat "$tmp/plot.err")"
for f in mrpc_f1 mrpc_accuracy mrpc_loss bias; do
  [[ -s $tmp/fig/$f.svg && $(head -c 4 "$tmp/fig/$f.png" | tail -c 3) == PNG ]] || fail "plot: $f.svg/.png missing or not images"
done
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['layers'] > 0 and max(j['terms']['bq']) > 0 and max(j['terms']['bk']) < 0.1 * max(j['terms']['bq']), j" \
  "$tmp/fig/bias.json" || fail "plot bias-change: bq must change, bk (zero gradient) hardly"

finish "glue tasks"
