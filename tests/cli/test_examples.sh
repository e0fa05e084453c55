#!/usr/bin/env bash
# The example programs (issue #12) on tiny subsets: each trains, scores dev, writes its patch to
# the path given, reloads it onto a fresh backbone and predicts. rte keeps its best epoch's patch,
# so the reloaded patch must score exactly that epoch's dev accuracy.
#   test_examples.sh SST2 RTE MODEL_DIR DATA_DIR
set -uo pipefail
sst2=$1 rte=$2 model=$3 data=$4
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/common.sh"

"$sst2" "$model" "$data/glue/SST-2" "$tmp/sst2.safetensors" 64 1 >"$tmp/sst2.out" 2>&1 || fail "sst2: $(tail -3 "$tmp/sst2.out")"
grep -Eq '^epoch 1: dev accuracy 0\.[0-9]{4} \(872 sentences\)' "$tmp/sst2.out" || fail "sst2: no dev line: $(cat "$tmp/sst2.out")"
[[ -s $tmp/sst2.safetensors ]] || fail "sst2: no patch at the path given"
(($(grep -Ec ' -> (positive|negative)$' "$tmp/sst2.out") == 2)) || fail "sst2: no predictions: $(cat "$tmp/sst2.out")"

"$rte" "$model" "$data/glue/RTE" "$tmp/rte.safetensors" 2 48 >"$tmp/rte.out" 2>&1 || fail "rte: $(tail -3 "$tmp/rte.out")"
python3 - "$tmp/rte.out" <<'PY' || fail "rte: $(cat "$tmp/rte.out")"
import re, sys
text = open(sys.argv[1]).read()
epochs = [float(a) for a in re.findall(r"dev accuracy (0\.\d{4}), \d+ s", text)]
assert len(epochs) == 2, epochs
reloaded = float(re.search(r"rte\.safetensors: \d+ KiB, dev accuracy (0\.\d{4})", text)[1])
assert reloaded == max(epochs), (reloaded, epochs)  # the best epoch's patch was kept
assert re.search(r"=> \"Someone makes music.\": (entailment|not_entailment)$", text, re.M)
assert "training bq and bm2 of" in text
PY
expect_usage() {
  "$@" >/dev/null 2>"$tmp/err"
  (($? == 2)) && grep -q '^usage:' "$tmp/err" || fail "$1 without arguments: not a usage line and exit 2"
}
expect_usage "$sst2"
expect_usage "$rte"
"$rte" "$tmp/no-model" >/dev/null 2>"$tmp/err" && fail "rte with a missing model: exit 0"
grep -q "^rte: .*no-model" "$tmp/err" || fail "rte with a missing model: $(cat "$tmp/err")"

finish examples
