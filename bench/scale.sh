#!/usr/bin/env bash
# bench/scale.sh: the control plane at scale, on hollow nodes.
#
# Starts NODES sbxlets with the simulated runtime (runtime "sim": the real
# API, admission, address and port booking and state files, nothing run;
# state on tmpfs, start latency SIM_LATENCY) and sandboxd-o with all of them
# as config nodes (a real SQLite file on disk, synchronous=FULL). Once every
# node is Ready, bin/loadgen creates SANDBOXES sandboxes through
# POST /api/v1/sandboxes (one container, one port each, so host ports are
# booked too) with CONCURRENCY creates in flight, each waited for until
# "Running". Reports:
#   - placements per second: sandboxes Running / wall time of the run
#     (target >= 1,000/s), and the create rate the API accepted;
#   - POST → Running p50/p99 (includes the hollow start latency);
#   - sandboxd-o CPU (share of one core over the run) and RSS before/after;
#   - the worst event-loop stall of sandboxd-o and of the busiest sbxlet
#     (target < 5 ms);
#   - checks: every sandbox Running, no (node, host port) pair twice, each
#     node's sandbox count equals the control plane's.
# Appends a markdown section to $BENCH_MD when set (make bench).
#
#   NODES=100 SANDBOXES=10000 CONCURRENCY=256 SIM_LATENCY=100ms bench/scale.sh
#   PERF_OUT=/tmp/orch.perf bench/scale.sh   (also profiles sandboxd-o with perf)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

NODES=${NODES:-100}
SANDBOXES=${SANDBOXES:-10000}
CONCURRENCY=${CONCURRENCY:-256}
SIM_LATENCY=${SIM_LATENCY:-100ms}
SECRET=bench-scale-secret-0123456789
H="Authorization: Bearer $SECRET"
T_START=$SECONDS

for b in bin/sbxlet bin/sandboxd-o bin/loadgen; do
  [ -x "$b" ] || { echo "scale.sh: $b is not built (make bench)" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "scale.sh: jq not found (tools/deps.sh)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/sbxbench-scale.XXXXXX)
SHM=$(mktemp -d /dev/shm/sbxbench-scale.XXXXXX)
PIDS=()
ORCH_PID=""
FAILS=0
log() { echo "scale: $* [$((SECONDS - T_START))s]" >&2; }
fail() { FAILS=$((FAILS + 1)); echo "scale.sh: FAILED: $*" >&2; }

cleanup() {
  [ -n "$ORCH_PID" ] && kill -TERM "$ORCH_PID" 2>/dev/null
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  [ -n "$ORCH_PID" ] && wait "$ORCH_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# listening_port LOG PID [READY_MSG] (and the counting helpers, unused here)
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ---- hollow nodes ---------------------------------------------------------------------
log "starting $NODES hollow sbxlets (sim_start_latency $SIM_LATENCY)"
for i in $(seq 1 "$NODES"); do
  d="$SHM/n$i"
  mkdir -p "$d"
  bin/sbxlet --runtime sim --http-addr 127.0.0.1:0 --state-dir "$d" --shared-secret "$SECRET" \
    --sim-start-latency "$SIM_LATENCY" --sim-cpu 64 --sim-memory 256Gi --worker-threads 2 \
    --cni-conf-path "$d/none.conflist" 2>"$d/log" &
  PIDS+=($!)
done
NODES_JSON="["
for i in $(seq 1 "$NODES"); do
  port=$(listening_port "$SHM/n$i/log" "${PIDS[$((i - 1))]}" "state recovered") || { echo "scale.sh: sbxlet $i did not start" >&2; exit 1; }
  PORTS[$i]=$port
  NODES_JSON+="$([ "$i" -gt 1 ] && echo ,){\"id\":\"h$(printf %03d "$i")\",\"ip\":\"127.0.0.1\",\"port\":$port}"
done
NODES_JSON+="]"

bin/sandboxd-o --http-addr 127.0.0.1:0 --shared-secret "$SECRET" --sqlite-path "$WORK/orch/orchestrator.db" \
  --heartbeat-interval 1s --create-rps 1000000 --create-burst 1000000 --nodes "$NODES_JSON" \
  2>"$WORK/orch.log" &
ORCH_PID=$!
ORCH_PORT=$(listening_port "$WORK/orch.log" "$ORCH_PID") || { echo "scale.sh: sandboxd-o did not start" >&2; exit 1; }
ready=0
for _ in $(seq 1 300); do
  ready=$(curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/nodes" | grep -o '"state":"Ready"' | wc -l)
  [ "$ready" -eq "$NODES" ] && break
  sleep 0.1
done
[ "$ready" -eq "$NODES" ] || { echo "scale.sh: only $ready of $NODES nodes Ready" >&2; exit 1; }
log "sandboxd-o :$ORCH_PORT, $NODES nodes Ready"

# ---- the load --------------------------------------------------------------------------
sleep 2  # heartbeats settle
curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/loop?reset=1" >/dev/null
for i in $(seq 1 "$NODES"); do
  curl -s -H "$H" "http://127.0.0.1:${PORTS[$i]}/v1/node/loop?reset=1" >/dev/null
done
RSS0=$(rss_kib "$ORCH_PID")
CPU0=$(cpu_ticks "$ORCH_PID")
PERF_PID=""
if [ -n "${PERF_OUT:-}" ]; then  # PERF_OUT=FILE: perf profile of sandboxd-o during the load
  perf record -q ${PERF_ARGS:--g} -o "$PERF_OUT" -p "$ORCH_PID" 2>/dev/null &
  PERF_PID=$!
fi
T0=$EPOCHREALTIME
bin/loadgen --api orch --target "127.0.0.1:$ORCH_PORT" --secret "$SECRET" --mix create=1 \
  --count "$SANDBOXES" --concurrency "$CONCURRENCY" --wait-running --ports 1 --id-prefix sc- \
  --json > "$WORK/loadgen.out" 2>"$WORK/loadgen.err"
LG_RC=$?
T1=$EPOCHREALTIME
[ -n "$PERF_PID" ] && kill -INT "$PERF_PID" && wait "$PERF_PID"
CPU1=$(cpu_ticks "$ORCH_PID")
RSS1=$(rss_kib "$ORCH_PID")
read -r ORCH_STALL ORCH_STALL_CPU < <(curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/loop" | jq -r '"\(.max_stall_us) \(.max_stall_cpu_us)"')
ORCH_WORST=$(curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/loop" | jq -c .worst_turn)
ORCH_OVER=$(curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/loop" | jq -r '"\(.turns_over_5ms) by wall, \(.turns_over_5ms_cpu) by CPU, of \(.turns)"')
NODE_STALL=0
NODE_STALL_CPU=0
for i in $(seq 1 "$NODES"); do
  read -r s c < <(curl -s -H "$H" "http://127.0.0.1:${PORTS[$i]}/v1/node/loop" | jq -r '"\(.max_stall_us) \(.max_stall_cpu_us)"')
  [ "${s:-0}" -gt "$NODE_STALL" ] && NODE_STALL=$s
  [ "${c:-0}" -gt "$NODE_STALL_CPU" ] && NODE_STALL_CPU=$c
done
grep -v '^{' "$WORK/loadgen.out" >&2
[ "$LG_RC" -eq 0 ] || fail "loadgen reported errors (exit $LG_RC): $(tail -3 "$WORK/loadgen.err")"
JSON=$(grep '^{' "$WORK/loadgen.out" | tail -1)

# ---- checks ----------------------------------------------------------------------------
: > "$WORK/all.jsonl"
cursor=""
while :; do
  page=$(curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes?limit=1000${cursor:+&cursor=$cursor}")
  echo "$page" | jq -c '.items[]' >> "$WORK/all.jsonl"
  cursor=$(echo "$page" | jq -r '.next_cursor // empty')
  [ -n "$cursor" ] || break
done
total=$(wc -l < "$WORK/all.jsonl")
running=$(jq -r 'select(.status.phase == "Running") | .id' "$WORK/all.jsonl" | wc -l)
dups=$(jq -r '.status.node_name as $n | .status.assigned_ports[]? | "\($n) \(.host_port)/\(.protocol)"' "$WORK/all.jsonl" | sort | uniq -d | wc -l)
[ "$total" -eq "$SANDBOXES" ] || fail "the control plane lists $total sandboxes, not $SANDBOXES"
[ "$running" -eq "$SANDBOXES" ] || fail "$running of $SANDBOXES Running"
[ "$dups" -eq 0 ] || fail "$dups (node, host port) pairs booked twice"
mismatch=0
for i in $(seq 1 "$NODES"); do
  name="h$(printf %03d "$i")"
  want=$(jq -r --arg n "$name" 'select(.status.node_name == $n) | .id' "$WORK/all.jsonl" | wc -l)
  have=$(curl -s -H "$H" "http://127.0.0.1:${PORTS[$i]}/v1/node/status" | jq .resources.sandboxes)
  [ "$want" = "$have" ] || mismatch=$((mismatch + 1))
done
[ "$mismatch" -eq 0 ] || fail "$mismatch nodes hold a different number of sandboxes than the control plane says"

# ---- figures ----------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
read -r WALL PLACE CPU_PCT < <(awk -v t0="$T0" -v t1="$T1" -v c0="$CPU0" -v c1="$CPU1" -v hz="$HZ" -v n="$running" \
  'BEGIN { w = t1 - t0; printf "%.2f %.0f %.1f\n", w, n / w, 100 * (c1 - c0) / hz / w }')
P50=$(echo "$JSON" | jq '.create_to_running.p50_ms' 2>/dev/null)
P99=$(echo "$JSON" | jq '.create_to_running.p99_ms' 2>/dev/null)
ACC=$(echo "$JSON" | jq '.ops.create.ok_per_s' 2>/dev/null)
ACC_P99=$(echo "$JSON" | jq '.ops.create.p99_ms // empty' 2>/dev/null)
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
per_sbx=$(awk -v a="$RSS0" -v b="$RSS1" -v n="$SANDBOXES" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')

{
  echo "### Control plane: $NODES hollow nodes, $SANDBOXES sandboxes"
  echo
  echo "bin/loadgen, $CONCURRENCY creates in flight, each waited for until Running; one port each;"
  echo "hollow start latency $SIM_LATENCY; sandboxd-o with SQLite (WAL, synchronous=FULL) on disk; $(nproc) cores."
  echo
  echo "| figure | value | target |"
  echo "|---|---|---|"
  echo "| placements/s (Running / wall, $WALL s) | **$PLACE** | ≥ 1,000 |"
  echo "| creates accepted/s (POST answered) | ${ACC:-?} | |"
  echo "| POST answer p99 | ${ACC_P99:-?} ms | |"
  echo "| POST → Running p50 / p99 | ${P50:-?} / ${P99:-?} ms (hollow start $SIM_LATENCY included) | |"
  echo "| sandboxd-o CPU over the run | $CPU_PCT% of one core | |"
  echo "| sandboxd-o RSS before → after | $((RSS0 / 1024)) → $((RSS1 / 1024)) MiB ($per_sbx B/sandbox) | |"
  echo "| worst loop turn, wall: sandboxd-o / worst sbxlet | $(ms "$ORCH_STALL") / $(ms "$NODE_STALL") ms | < 5 ms |"
  echo "| worst loop turn, loop-thread CPU: sandboxd-o / worst sbxlet | $(ms "$ORCH_STALL_CPU") / $(ms "$NODE_STALL_CPU") ms | |"
  echo "| sandboxd-o turns over 5 ms | $ORCH_OVER turns | |"
  echo "| sandboxd-o's worst turn, by phase | \`$ORCH_WORST\` | |"
  echo "| loadgen's own CPU is on the same 2 cores; a wall turn far above its CPU turn is preemption | | |"
  echo "| checks: Running, double-booked ports, node mismatches | $running/$SANDBOXES, $dups, $mismatch | all, 0, 0 |"
  echo
} > "$WORK/section.md"
cat "$WORK/section.md"
[ -n "${BENCH_MD:-}" ] && cat "$WORK/section.md" >> "$BENCH_MD"
log "done, $FAILS failures"
[ "$FAILS" -eq 0 ]
