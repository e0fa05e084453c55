# Shared by the CLI test scripts (source it after setting tmp, a scratch directory): failures
# are counted, not fatal, so one run reports every broken check; `finish NAME` exits non-zero
# if any failed.
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_error "what" needle -- command...: non-zero exit and exactly one stderr line (notes of
# `bitfit train`, which are not errors, aside) containing needle: the contract of every tool error.
expect_error() {
  local what=$1 needle=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$? lines
  lines=$(grep -cv '^bitfit train: note:' "$tmp/err")
  ((rc != 0)) || fail "$what: exit 0"
  ((lines == 1)) || fail "$what: $lines stderr lines: $(cat "$tmp/err")"
  grep -qF -- "$needle" "$tmp/err" || fail "$what: stderr lacks '$needle': $(cat "$tmp/err")"
}

# finish NAME: the verdict line and the exit status.
finish() {
  if ((failures)); then
    echo "$failures failure(s)" >&2
    exit 1
  fi
  echo "$1: all checks passed${2:+ ($2)}"
}
