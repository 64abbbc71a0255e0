#!/usr/bin/env bash
# make bench: every benchmark, one report at bench/results/<date>-<commit>.md.
# Each figure stands beside a baseline measured in the same run:
#   1. HTTP (bench/http.sh): sbxlet vs nginx, GET /healthz and a sandbox of
#      10,000 on a hollow node, at 64 and 256 connections;
#   2. create → running (bench/create.sh): runc and runsc, 1 and 16 in
#      flight, vs bare `ctr run -d`;
#   3. density (bench/density.sh): bytes per hollow sandbox; host memory
#      per real runc sandbox by holder;
#   4. probes (bench/probes.sh): 10,000 tcp probes vs the bare syscalls;
#   5. control plane (bench/scale.sh): 100 hollow nodes, 10,000 sandboxes
#      from bin/loadgen;
#   6. sandboxd-o's added latency (bench/orch.sh) vs the same create directly;
# and the worst event-loop stall under each load. A failing part is marked
# in the report; the others still run. Exit status: non-zero if any failed.
#
#   ONLY="http scale" bench/all.sh   (as root, offline; ~15 minutes)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PARTS=${ONLY:-"http create density probes scale orch"}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=" (working tree modified)"
mkdir -p bench/results
OUT=bench/results/$(date -u +%Y-%m-%d)-$commit.md
export BENCH_MD
BENCH_MD=$(mktemp /tmp/sbxbench-report.XXXXXX)
trap 'rm -f "$BENCH_MD"' EXIT
{
  echo "# sandboxd benchmarks"
  echo
  echo "$(date -u +%FT%TZ), commit $commit$dirty; $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)."
  echo
} > "$BENCH_MD"
status=()
failed=0
for part in $PARTS; do
  t0=$SECONDS
  echo "=== bench: $part" >&2
  if bash "bench/$part.sh"; then
    status+=("| $part | ok | $((SECONDS - t0)) s |")
  else
    failed=1
    status+=("| $part | **failed** (see its output) | $((SECONDS - t0)) s |")
    printf '### %s\n\nfailed: see the run output.\n\n' "$part" >> "$BENCH_MD"
  fi
done
{
  echo "### Runs"
  echo
  echo "| part | status | time |"
  echo "|---|---|---|"
  printf '%s\n' "${status[@]}"
} >> "$BENCH_MD"
cp "$BENCH_MD" "$OUT"
echo "report: $OUT" >&2
exit "$failed"
