#!/usr/bin/env bash
# Run every test suite against the build in $1 (default build/asan) and end with one line over
# all suites: "N passed, N failed". Suites: cmocka unit tests, fuzz corpus replays, API tests
# (node's test runner driving the real `ingot serve` over HTTP).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/asan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export INGOT_BIN=$PWD/$out/ingot
passed=0
failed=0
log=$(mktemp -d)

echo "== unit tests (cmocka)"
for t in "$out"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  "$t" >"$log/$name.log" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -1)
  p=${p:-0}; f=${f:-0}
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer abort
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-28s %3d passed, %d failed\n' "$name" "$p" "$f"
  [ "$f" -eq 0 ] || cat "$log/$name.log"
done

echo "== fuzz corpus replay"
for r in "$out"/fuzz/replay_*; do
  [ -x "$r" ] || continue
  target=${r##*/replay_}
  corpus=tests/fuzz/corpus/$target
  if "$r" "$corpus" >"$log/fuzz_$target.log" 2>&1; then
    passed=$((passed + 1)); printf '%-28s replayed %s\n' "fuzz_$target" "$(ls "$corpus" | wc -l) inputs"
  else
    failed=$((failed + 1)); echo "fuzz_$target FAILED"; tail -40 "$log/fuzz_$target.log"
  fi
done

echo "== API tests (node --test, real ingot serve on loopback)"
if ls tests/api/*.test.mjs >/dev/null 2>&1; then
  node --test --test-reporter=tap tests/api/ >"$log/api.tap" 2>&1
  p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log/api.tap" | tail -1)
  f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log/api.tap" | tail -1)
  c=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$log/api.tap" | tail -1)
  p=${p:-0}; f=${f:-1}; f=$((f + ${c:-0}))   # a test cancelled by a failed hook did not pass
  grep -E '^(not )?ok ' "$log/api.tap" | sed 's/^/  /'
  passed=$((passed + p)); failed=$((failed + f))
  # On failure show every failing test's own block (its error, expected/actual, the server's
  # stderr tail), not just the end of the log.
  [ "$f" -eq 0 ] || grep -n -A 60 '^ *not ok ' "$log/api.tap" | head -400
fi

rm -rf "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
