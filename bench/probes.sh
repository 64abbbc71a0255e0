#!/usr/bin/env bash
# bench/probes.sh: what readiness probes cost sbxlet's loop thread.
# bin/probe-bench (tools/probe-bench.cpp) in a network namespace of its own:
# PROBES (10,000) tcp probes and PROBES/10 http probes at a 1 s period
# against listeners on loopback, beside the bare syscalls of the same tcp
# attempts without the runner (the kernel's floor), measured in the same
# run. Target: 10,000 tcp probes under 10% of one core. Appends a markdown
# section to $BENCH_MD when set (make bench).
#
#   PROBES=10000 bench/probes.sh   (as root: unshare -n)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PROBES=${PROBES:-10000}
[ -x bin/probe-bench ] || { echo "probes.sh: bin/probe-bench is not built (make bench)" >&2; exit 2; }
out=$(mktemp /tmp/sbxbench-probes.XXXXXX)
trap 'rm -f "$out"' EXIT
unshare -n sh -c 'ip link set lo up && exec bin/probe-bench "$0"' "$PROBES" | tee "$out" || exit 1
tcp=$(awk '/^tcp probes/ {print; exit}' "$out")
floor=$(awk '/^tcp floor/ {print; exit}' "$out")
http=$(awk '/^http probes/ {print; exit}' "$out")
cpu() { echo "$1" | grep -o 'cpu [0-9.]*%' | head -1 | cut -d' ' -f2; }
turn() { echo "$1" | grep -o 'worst turn [0-9.]* ms' | cut -d' ' -f3; }
{
  echo "### Readiness probes (1 s period, loopback, own netns)"
  echo
  echo "| probes | loop-thread CPU | kernel floor (bare syscalls) | worst loop turn | target |"
  echo "|---|---|---|---|---|"
  echo "| $PROBES tcp | **$(cpu "$tcp")** of one core | $(cpu "$floor") | $(turn "$tcp") ms | < 10% |"
  echo "| $((PROBES / 10)) http | $(cpu "$http") | | $(turn "$http") ms | |"
  echo
} | tee -a "${BENCH_MD:-/dev/null}"
