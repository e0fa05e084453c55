#!/usr/bin/env bash
# scripts/paper-results and reproduce-paper --list on a made-up tree: the three sources of a run's
# record (the transcribed archive, the tracked results/paper/, the work tree's runs/paper/) and
# which one wins, what the generated tables show, and that the text around the markers stays.
# Usage: test_paper_results.sh SOURCE_DIR
set -uo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/common.sh"

mkdir -p "$tmp/scripts" "$tmp/docs" "$tmp/results/paper" "$tmp/runs/paper/pos_xpos-bitfit-s43" \
  "$tmp/runs/paper/rte-bitfit-s42"
cp "$src/scripts/paper-results" "$src/scripts/reproduce-paper" "$tmp/scripts/"
printf 'before\n<!-- reproduce-paper:begin -->\nold tables\n<!-- reproduce-paper:end -->\nafter\n' >"$tmp/docs/RESULTS.md"

# Seed 42 only in the archive; seed 43 in both the archive and runs/ (runs/ wins); seed 44 recorded.
cat >"$tmp/results/paper-archive.json" <<'EOF'
{"about": "test", "machine": "CPU A", "metric": "accuracy",
 "runs": {"pos_xpos-bitfit-s42": {"dev": [95.0, 96.0, 95.5], "test": 96.10, "train": 97.00},
          "pos_xpos-bitfit-s43": {"dev": [90.0, 90.0, 90.0], "test": 90.00}}}
EOF
record() {  # record SEED TEST FINISHED: a metrics.json as bitfit train writes it, reduced to what is read
  printf '{"seed": %s, "finished": %s, "best": {"epoch": 1, "test": {"accuracy": %s}},
 "epoch": [{"epoch": 1, "dev": {"accuracy": 0.97}, "seconds": 1800, "eval_seconds": 0, "cpu": "CPU B"}]}\n' "$1" "$3" "$2"
}
record 43 0.9630 true >"$tmp/runs/paper/pos_xpos-bitfit-s43/metrics.json"
record 44 0.9650 true >"$tmp/results/paper/pos_xpos-bitfit-s44.json"
# The learning-rate search: CoLA full_ft at 2e-5 (Table 2's) and at 3e-5; the better one in bold.
for lr_mcc in ":0.55" "-lr3e-5:0.58"; do
  printf '{"seed": 42, "finished": true, "epoch": [{"epoch": 1, "dev": {"mcc": %s}, "seconds": 60, "cpu": "CPU B"}]}\n' \
    "${lr_mcc#*:}" >"$tmp/results/paper/cola-full_ft${lr_mcc%%:*}-s42.json"
done
record 42 0.0 false | sed 's/"dev": {"accuracy": 0.97}/"dev": {"accuracy": 0.66}/' >"$tmp/runs/paper/rte-bitfit-s42/metrics.json"

BITFIT_CLI=/nonexistent python3 "$tmp/scripts/paper-results" "$tmp/runs/paper" >"$tmp/out" 2>"$tmp/err" ||
  fail "paper-results: exit $?: $(cat "$tmp/err")"
doc="$tmp/docs/RESULTS.md"
# XPOS BitFit: test 96.10 (archive), 96.30 (runs/ over the archive's 90.00), 96.50 (record).
grep -qF '| BitFit | 97.2 | 96.30 ± 0.20 (n=3) | 96.67 |' "$doc" ||
  fail "XPOS BitFit row: $(grep -F '| BitFit | 97.2' "$doc")"
grep -qF '| 1.0 |' <(grep -F '| BitFit | 97.2' "$doc") || fail "hours: the two timed runs' hour, not the archive's"
grep -qF '| RTE (accuracy) | 70.5 ± 0.6 | not run yet | – | – | – | 72.3 ± 0.9 | 66.0 (n=1) * |' "$doc" ||
  fail "unfinished RTE run: $(grep -F '| RTE (accuracy) | 70.5' "$doc")"
# The same unfinished run in Table 3's BitFit row, with its best epoch over the epochs run.
grep -qF '| BitFit | 72.3 ± 0.9 | 66.0 (n=1) * [1/1] |' "$doc" ||
  fail "Table 3's BitFit row: $(grep -F '| BitFit | 72.3' "$doc")"
grep -qF '| CoLA (mcc) | not run yet | 55.0 (n=1) | **58.0 (n=1)** | not run yet | 56.4 ± 0.9 | not run yet |' "$doc" ||
  fail "learning-rate row: $(grep -F '| CoLA (mcc) | ' "$doc" | tail -1)"
grep -qF '| 58.0 (3e-5), 2 of 4 rates | 58.8 ± 0.5 |' <(grep -F '| CoLA (mcc) | 56.4' "$doc") ||
  fail "Table 2's best-rate cell: $(grep -F '| CoLA (mcc) | 56.4' "$doc")"
# The epochs table's rows come from reproduce-paper's epochs block, each after the run it lengthens.
grep -A1 -F '| RTE (accuracy), bm2+bq, Table 3' "$doc" | grep -qF '| RTE (accuracy), bm2+bq, 20 epochs | not run yet |' ||
  fail "epochs table: $(grep -F '| RTE (accuracy), ' "$doc")"
grep -qF 'besides 1 archived runs' "$doc" || fail "archived count: $(grep -F 'Wall time' "$doc")"
grep -qF 'CPU A (archived); CPU B' "$doc" || fail "CPUs: $(grep -F 'Wall time' "$doc")"
[[ $(head -1 "$doc") == before && $(tail -1 "$doc") == after ]] || fail "text around the markers changed"
grep -qF 'old tables' "$doc" && fail "the old block was kept"
# A bar chart per table, each shown under its table.
for fig in table2 table3_rte table3_mrpc table3_stsb; do
  [[ -f "$tmp/docs/figures/$fig.json" ]] || fail "no docs/figures/$fig.json"
  grep -qF "(figures/$fig.png)" "$doc" || fail "RESULTS.md does not show figures/$fig.png"
done
# Table 2's Full-FT bar is the best rate run (CoLA: 3e-5's 58.0, not 2e-5's 55.0), as the paper's is.
python3 -c 'import json, sys; g = {g["name"]: g["value"] for g in json.load(open(sys.argv[1]))["groups"]}
assert round(g["CoLA"][1], 6) == 58.0, g["CoLA"]; assert g["RTE"][1] is None, g["RTE"]' "$tmp/docs/figures/table2.json" ||
  fail "table2.json: Full-FT bar is not the best rate run"
# Every table's separator has as many cells as its header (a short one hides the last columns),
# also when Table 3 has another number of tasks than three.
mismatched() { awk '/^\|---/ && prev ~ /^\|/ && gsub(/\|/, "|") != gsub(/\|/, "|", prev) { print prev } { prev = $0 }' "$1"; }
[[ -z $(mismatched "$doc") ]] || fail "a separator's cells differ from its header's: $(mismatched "$doc")"
sed 's/^TABLE3_TASKS = .*/TABLE3_TASKS = ("rte", "mrpc")/' "$tmp/scripts/paper-results" >"$tmp/scripts/paper-results-2"
BITFIT_CLI=/nonexistent python3 "$tmp/scripts/paper-results-2" "$tmp/runs/paper" >"$tmp/out" 2>"$tmp/err" ||
  fail "paper-results with two Table 3 tasks: exit $?: $(cat "$tmp/err")"
[[ -z $(mismatched "$doc") ]] || fail "two Table 3 tasks: a separator's cells differ: $(mismatched "$doc")"

# A lengthened run of the epochs block, recorded: its learning curves are drawn from the record
# (a stand-in CLI logs the call and writes the figures) and shown under the epochs table.
printf '{"seed": 42, "finished": true, "epoch": [{"epoch": 1, "dev": {"accuracy": 0.70}, "seconds": 60, "cpu": "CPU B"}]}\n' \
  >"$tmp/results/paper/rte-bitfit-e20-s42.json"
cat >"$tmp/cli" <<'EOF'
#!/usr/bin/env bash
echo "$*" >>"${0%/*}/cli.log"
[[ "$1 $2" == "plot curves" ]] && mkdir -p "${6%/*}" && touch "$6_accuracy.png"
exit 0
EOF
chmod +x "$tmp/cli"
BITFIT_CLI="$tmp/cli" python3 "$tmp/scripts/paper-results" "$tmp/runs/paper" >"$tmp/out" 2>"$tmp/err" ||
  fail "paper-results with a CLI: exit $?: $(cat "$tmp/err")"
grep -qxF "plot curves --metrics $tmp/results/paper/rte-bitfit-e20-s42.json --output $tmp/docs/figures/curves/rte_bitfit-e20" \
  "$tmp/cli.log" || fail "the 20-epoch run's curves were not drawn from its record: $(cat "$tmp/cli.log")"
grep -qF '| RTE (accuracy), 20 epochs | 70.0 (1) |' "$doc" || fail "20-epoch row: $(grep -F '20 epochs |' "$doc")"
grep -qxF '![RTE (accuracy), 20 epochs](figures/curves/rte_bitfit-e20_accuracy.png)' "$doc" ||
  fail "RESULTS.md does not show the 20-epoch run's curve"
grep -qF 'figures/curves/rte_bitfit_' "$doc" && fail "a Table 2 run's curve is shown under the epochs table"

BITFIT_PAPER_RUNS="$tmp/runs/paper" BITFIT_PAPER_RECORD="$tmp/results/paper" \
  bash "$tmp/scripts/reproduce-paper" --list pos >"$tmp/list" 2>"$tmp/err" || fail "--list: exit $?: $(cat "$tmp/err")"
for want in "archived pos_xpos-bitfit-s42" "done     pos_xpos-bitfit-s43" "done     pos_xpos-bitfit-s44" \
  "pending  pos_xpos-full_ft-s42"; do
  grep -qxF "$want" "$tmp/list" || fail "--list lacks '$want'"
done
# An override in the environment (as run exports it to paper-results, which calls --list) names nothing.
lr_override=1e-5 epochs_override=20 BITFIT_PAPER_RUNS="$tmp/runs/paper" \
  bash "$tmp/scripts/reproduce-paper" --list table2 >"$tmp/list" 2>"$tmp/err"
grep -qxF "pending  rte-bitfit-s42" "$tmp/list" || fail "--list: the unfinished RTE run is not pending: $(head -1 "$tmp/list")"
# A filter selects runs by name, --list included.
BITFIT_PAPER_MATCH='full_ft-s4[34]' BITFIT_PAPER_RUNS="$tmp/runs/paper" BITFIT_PAPER_RECORD="$tmp/results/paper" \
  bash "$tmp/scripts/reproduce-paper" --list pos >"$tmp/list" 2>"$tmp/err" || fail "--list with a filter: exit $?: $(cat "$tmp/err")"
[[ $(sort "$tmp/list" | tr '\n' ' ') == "pending  pos_upos-full_ft-s43 pending  pos_upos-full_ft-s44 pending  pos_xpos-full_ft-s43 pending  pos_xpos-full_ft-s44 " ]] ||
  fail "--list with BITFIT_PAPER_MATCH: $(cat "$tmp/list")"
finish test_paper_results
