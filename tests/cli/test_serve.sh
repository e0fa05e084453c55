#!/usr/bin/env bash
# `bitfit serve` end to end (issue #10), the short form of docs/SERVING.md that CI runs: real
# patches of three tasks and a POS tagger (trained here, briefly) on one backbone; concurrent mixed-task requests
# whose labels must equal `bitfit predict`'s, row for row; batching must happen; every kind of bad
# request gets its 4xx JSON error and the server keeps serving; tasks load and unload while
# requests are in flight; SIGTERM stops it cleanly. `bitfit merge` writes its directory.
#   test_serve.sh BITFIT MODEL_DIR DATA_DIR
set -uo pipefail
bitfit=$1 model=$2 data=$3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
server=""
trap '[[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/common.sh"

# Three real patches: a single-text task, a pair task, a regression (256 examples, 1 epoch).
for t in SST-2:sst2 RTE:rte STS-B:stsb; do
  "$bitfit" train -t "${t#*:}" -m "$model" --data-dir "$data/glue/${t%%:*}" -o "$tmp/${t#*:}" --max-train-examples 256 \
    -e 1 -b 16 -l 1e-3 -s 3 --no-train-eval 2>"$tmp/train.err" || fail "train ${t#*:}: $(tail -2 "$tmp/train.err")"
done
# A tagger too (UPOS, 64 sentences): served from the same bank, its tags are bitfit predict's.
"$bitfit" train -t pos -m "$model" --data-dir "$data/ud_english_ewt" -o "$tmp/pos" --max-train-examples 64 -e 1 -b 16 \
  -l 1e-3 --head-learning-rate 1e-2 --no-train-eval 2>"$tmp/train.err" || fail "train pos: $(tail -2 "$tmp/train.err")"
awk 'BEGIN{RS=""; ORS="\n\n"} NR <= 6' "$data/ud_english_ewt/en_ewt-ud-dev.conllu" >"$tmp/pos.conllu"
"$bitfit" predict -m "$model" --patch "$tmp/pos/patch.safetensors" --input "$tmp/pos.conllu" --output "$tmp/pos-tagged.conllu" \
  >/dev/null 2>"$tmp/err" || fail "predict pos: $(cat "$tmp/err")"
# The reference: bitfit predict on the first rows of each dev set.
head -n 49 "$data/glue/SST-2/dev.tsv" >"$tmp/sst2.tsv"
head -n 25 "$data/glue/RTE/dev.tsv" >"$tmp/rte.tsv"
for t in sst2 rte; do
  "$bitfit" predict -m "$model" --patch "$tmp/$t/patch.safetensors" --input "$tmp/$t.tsv" --output "$tmp/$t.pred" \
    --logits "$tmp/$t.npy" >/dev/null 2>"$tmp/err" || fail "predict $t: $(cat "$tmp/err")"
done
# predict --logits (what scripts/check-merge compares with transformers): float32 (N, 2), whose
# argmax is the predicted label.
python3 - "$tmp/sst2.npy" "$tmp/sst2.pred" <<'PY' || fail "predict --logits"
import ast, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<H", raw, 8)[0]
header = ast.literal_eval(raw[10:10 + n].decode())
assert header["descr"] == "<f4" and header["shape"] == (48, 2), header
z = struct.unpack("<96f", raw[10 + n:])
labels = [line.split("\t")[1].strip() for line in open(sys.argv[2])][1:]
assert labels == [str(int(z[2 * i + 1] > z[2 * i])) for i in range(48)], labels
PY

expect_error "serve, a missing patch" "nope.safetensors" -- "$bitfit" serve -m "$model" --patch "x=$tmp/nope.safetensors"
expect_error "serve, a bad port" "--port must be in [0, 65535]" -- "$bitfit" serve -m "$model" --port 70000
expect_error "serve, a bad --patch" "--patch expects NAME=FILE" -- "$bitfit" serve -m "$model" --patch "x="

# The server: any free port, a long batching wait so that concurrent requests surely meet.
"$bitfit" serve -m "$model" --port 0 --max-wait-ms 50 --max-inputs 16 --max-body 65536 \
  --patch "$tmp/sst2/patch.safetensors" --patch "entail=$tmp/rte/patch.safetensors" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server=$!
for _ in $(seq 600); do
  grep -q 'listening on' "$tmp/serve.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.out")
if [[ -z "$port" ]]; then
  fail "serve did not start: $(cat "$tmp/serve.err")"
else
  expect_error "serve, a port in use" "cannot listen on 127.0.0.1:$port" -- "$bitfit" serve -m "$model" --port "$port"
  python3 "$here/serve_client.py" "$port" "$tmp" || fail "the HTTP checks (above)"
  kill -TERM "$server"
  wait "$server"
  rc=$?
  server=""
  ((rc == 0)) || fail "serve exited with $rc after SIGTERM: $(cat "$tmp/serve.err")"
  grep -q 'bitfit serve: stopped' "$tmp/serve.err" || fail "serve did not stop cleanly: $(cat "$tmp/serve.err")"
fi

# Merge: a standalone HF classifier directory; a second merge into it is refused.
"$bitfit" merge -m "$model" --patch "$tmp/rte/patch.safetensors" --output "$tmp/merged" 2>"$tmp/err" ||
  fail "merge: $(cat "$tmp/err")"
python3 - "$tmp/merged/config.json" <<'PY' || fail "merge: config.json"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["architectures"] == ["BertForSequenceClassification"], c["architectures"]
assert c["id2label"] == {"0": "entailment", "1": "not_entailment"}, c["id2label"]
PY
expect_error "merge into a non-empty directory" "already exists" -- \
  "$bitfit" merge -m "$model" --patch "$tmp/rte/patch.safetensors" --output "$tmp/merged"

finish serve
