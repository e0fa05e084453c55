#!/usr/bin/env bash
# `bitfit train -t pos` end to end (issue #11): a short real run on UD English-EWT writes a
# per-token patch and metrics.json with word accuracy on dev (every word) and on test at the best
# epoch; bad folders, flags and files give one-line errors naming the file and line.
#   test_pos.sh BITFIT MODEL_DIR DATA_DIR
set -uo pipefail
bitfit=$1 model=$2 data=$3
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_error "what" needle -- command...: non-zero exit, exactly one stderr line containing needle.
expect_error() {
  local what=$1 needle=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  ((rc != 0)) || fail "$what: exit 0"
  (($(wc -l <"$tmp/err") == 1)) || fail "$what: not one stderr line: $(cat "$tmp/err")"
  grep -qF -- "$needle" "$tmp/err" || fail "$what: stderr lacks '$needle': $(cat "$tmp/err")"
}

ud=$data/ud_english_ewt
# A short real run: 256 training sentences, one epoch, UPOS.
"$bitfit" train -t pos -m "$model" --data-dir "$ud" -o "$tmp/run" --max-train-examples 256 -e 1 -b 16 -l 1e-3 \
  --head-learning-rate 1e-2 --no-train-eval 2>"$tmp/train.err" || fail "train pos: $(tail -3 "$tmp/train.err")"
python3 - "$tmp/run/metrics.json" "$tmp/run/patch.safetensors" <<'PY' || fail "pos metrics or patch (above)"
import json, struct, sys
m = json.load(open(sys.argv[1]))
assert m["task"] == "pos" and m["tagset"] == "UPOS", m["task"]
best = m["best"]
# Every word of dev (25,147) and test (25,094) scored; far above the majority tag (NOUN, ~17%).
assert best["dev"]["words"] == 25147 and best["test"]["words"] == 25094, best
assert 0.5 < best["dev"]["accuracy"] <= 1 and 0.5 < best["test"]["accuracy"] <= 1, best
raw = open(sys.argv[2], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert meta["head"] == "token" and meta["task"] == "pos", meta
assert len(json.loads(meta["labels"])) == 17, meta["labels"]
PY

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

if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "pos: all checks passed"
