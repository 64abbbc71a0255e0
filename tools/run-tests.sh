#!/usr/bin/env bash
# Runs every test suite that `make test` built and prints one closing line,
# "N passed, M failed", summed over all suites (doctest counts test cases).
#   unit        build/unit_tests
#   asan+ubsan  build/asan/unit_tests
#   tsan        build/tsan/unit_tests
#   daemons     tests/integration/daemons_test.sh (the real binaries)
#   env         tests/integration/env_test.sh (the private containerd/registry)
#   integration build/integration_tests via tools/run-integration.sh
#   sbxlet      tests/integration/sbxlet_test.sh (real sbxlet, runc and runsc)
#   orch        tests/integration/orch_test.sh (real sandboxd-o and sbxlets)
#   hollow      tests/integration/hollow_test.sh (sim nodes, loadgen)
#   badinput    tests/integration/badinput_test.sh (bin/badinput's table)
#   chaos       tests/chaos/chaos.sh parts 1-2, 2 rounds (make chaos: all, 10 rounds)
set -uo pipefail
cd "$(dirname "$0")/.."

total_pass=0
total_fail=0
status=0
# One line per suite and every failing check's own line, printed again at the
# end: CI shows only the tail of this output.
summary=$(mktemp)
failures=$(mktemp)
trap 'rm -f "$summary" "$failures"' EXIT

note_suite() {  # note_suite NAME PASSED FAILED OUTPUT_FILE
  printf '  %-11s %6d passed, %d failed\n' "$1" "$2" "$3" >>"$summary"
  [ "$3" -gt 0 ] || return 0
  grep -E '^FAILED|^FAIL |TEST CASE:|ERROR|Sanitizer|runtime error|^timeout|fatal' "$4" \
    | head -20 | sed "s/^/  [$1] /" >>"$failures"
}

run_doctest() {  # run_doctest NAME COMMAND...
  local name=$1
  shift
  local out
  out=$(mktemp)
  echo "== $name: $* [$(date +%T)]"
  "$@" 2>&1 | tee "$out" | tail -4
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep '^\[doctest\] test cases:' "$out" | tail -1)
  local p f
  p=$(echo "$line" | sed -n 's/.*| *\([0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/.*| *\([0-9]*\) failed.*/\1/p')
  if [ -z "$p" ] || [ "$rc" -ne 0 ]; then
    # A crash or sanitizer abort leaves no summary: count the suite as failed.
    [ -n "$p" ] || p=0
    [ -n "$f" ] && [ "$f" -gt 0 ] || f=1
    # The failing check with its values and logged messages, and where.
    grep -E -B3 -A4 'ERROR|Sanitizer|runtime error' "$out" | head -60
    grep -E -A12 '^--- last containerd log lines' "$out" | head -14
    status=1
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  note_suite "$name" "$p" "$f" "$out"
  rm -f "$out"
}

run_script() {  # run_script NAME SCRIPT
  local name=$1 script=$2
  echo "== $name: $script [$(date +%T)]"
  local out
  out=$(mktemp)
  $script 2>&1 | tee "$out" | tail -20
  local rc=${PIPESTATUS[0]}
  local line p f
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | tail -1 | cut -d' ' -f1)
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | tail -1 | cut -d' ' -f1)
  [ -n "$p" ] || p=0
  [ -n "$f" ] || f=0
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "$f" -gt 0 ] || f=1
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  note_suite "$name" "$p" "$f" "$out"
  rm -f "$out"
}

run_doctest unit build/unit_tests
run_doctest asan+ubsan env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/asan/unit_tests
run_doctest tsan env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/unit_tests
run_script daemons tests/integration/daemons_test.sh
[ -x tests/integration/env_test.sh ] && run_script env tests/integration/env_test.sh
run_doctest integration tools/run-integration.sh build/integration_tests
run_script sbxlet "tools/run-integration.sh tests/integration/sbxlet_test.sh"
run_script orch "tools/run-integration.sh tests/integration/orch_test.sh"
run_script hollow tests/integration/hollow_test.sh
run_script badinput "tools/run-integration.sh tests/integration/badinput_test.sh"
# Parts 1 and 2 (sbxlet and containerd killed), to keep CI near 30 minutes;
# `make chaos` runs all four (3: sandboxd-o killed, 4: a node frozen).
run_script chaos "env CHAOS_ROUNDS=2 CHAOS_PARTS=1,2 tools/run-integration.sh tests/chaos/chaos.sh"

echo
echo "per suite:"
cat "$summary"
if [ -s "$failures" ]; then
  echo "what failed:"
  cat "$failures"
fi
echo "all suites: $total_pass passed, $total_fail failed [$(date +%T)]"
exit $status
