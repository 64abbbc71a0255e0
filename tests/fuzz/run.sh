#!/usr/bin/env bash
# Runs libFuzzer targets one after another (`make fuzz` builds them first):
#
#   tests/fuzz/run.sh [name...]     default: every tests/fuzz/*_fuzz.cpp
#
# Each runs FUZZ_SECONDS (60) on its working corpus $FUZZ_DIR/corpus/<name>,
# seeded from tests/fuzz/corpus/<name> (read, never written), and writes what
# it finds to $FUZZ_DIR/crashes/<name>/ and its output to
# $FUZZ_DIR/logs/<name>.log. Prints per target the executions, exec/s and
# the final coverage line; exits 1 when any target crashed (or failed to
# start), after running the others.
set -u
cd "$(dirname "$0")/../.."

FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# UBSan findings are fatal already (-fno-sanitize-recover); give them stacks.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzz.cpp; do
    name=$(basename "$f" _fuzz.cpp)
    targets+=("$name")
  done
fi

failed=()
summary=()
for t in "${targets[@]}"; do
  bin=$FUZZ_DIR/$t
  corpus=$FUZZ_DIR/corpus/$t
  crashes=$FUZZ_DIR/crashes/$t
  log=$FUZZ_DIR/logs/$t.log
  if [ ! -x "$bin" ]; then
    echo "fuzz $t: $bin is not built (make $bin)" >&2
    failed+=("$t")
    continue
  fi
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("tests/fuzz/corpus/$t")
  echo "== fuzz $t: ${FUZZ_SECONDS}s (log $log)"
  "$bin" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$crashes/" -print_final_stats=1 \
    "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  runs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
  eps=$(grep -oE 'stat::average_exec_per_sec:[[:space:]]*[0-9]+' "$log" | grep -oE '[0-9]+$')
  if [ $rc -eq 0 ]; then
    echo "   ${runs:-?}, ${eps:-?} exec/s"
    echo "   ${done_line:-no DONE line}"
    summary+=("$(printf '%-14s ok      %s exec/s  %s' "$t" "${eps:-?}" "${done_line:-}")")
  else
    echo "   CRASHED (exit $rc); the report:"
    grep -nE '==[0-9]+==ERROR|runtime error|fuzz invariant failed|Test unit written|SUMMARY|ALARM|out-of-memory' "$log" |
      head -n 20 | sed 's/^/   /'
    ls -1 "$crashes" 2>/dev/null | sed "s|^|   $crashes/|"
    summary+=("$(printf '%-14s CRASHED see %s' "$t" "$log")")
    failed+=("$t")
  fi
done

echo
echo "== fuzz summary (${FUZZ_SECONDS}s each)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
