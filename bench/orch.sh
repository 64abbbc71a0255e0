#!/usr/bin/env bash
# bench/orch.sh: what the control plane adds to a create.
#
# Brings up a private containerd + loopback registry (tests/env/up.sh) in a
# temporary directory, one sbxlet (runc, a bridge and subnet of its own) and
# sandboxd-o with that sbxlet as its only node, then times, in the same run:
#   direct  POST /v1/sandboxes on the sbxlet → GET shows "running"
#   orch    POST /api/v1/sandboxes on sandboxd-o → GET shows "Running"
# (one container, alpine:3.20 sleeping 600 s, cpu 100m, memory 32Mi; GET
# every 10 ms on both paths; timestamps from $EPOCHREALTIME). N sequential
# creates of each, alternating, after one unmeasured warm-up each; each
# sandbox deleted (and checked gone) outside the timed region. Prints
# p50/p99 and the difference of the p50s (target: <= 50 ms), and writes the
# table to bench/results/orch-<date>-<commit>.md.
#
#   N=20 bench/orch.sh   (as root, offline)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

N=${N:-20}
SECRET=bench-orch-secret-0123456789
H="Authorization: Bearer $SECRET"
BRIDGE=sbxbo0
SUBNET=10.232.9.0/24
T_START=$SECONDS

[ "$(id -u)" -eq 0 ] || { echo "orch.sh: must run as root" >&2; exit 2; }
[ -x bin/sbxlet ] && [ -x bin/sandboxd-o ] || { echo "orch.sh: build first (make)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/sbxbench-orch.XXXXXX)
SBX_PID=""
ORCH_PID=""
FAILS=0
log() { echo "orch: $* [$((SECONDS - T_START))s]" >&2; }
fail() { FAILS=$((FAILS + 1)); echo "orch.sh: FAILED: $*" >&2; }

cleanup() {
  [ -n "$ORCH_PID" ] && kill -TERM "$ORCH_PID" 2>/dev/null && wait "$ORCH_PID" 2>/dev/null
  [ -n "$SBX_PID" ] && kill -TERM "$SBX_PID" 2>/dev/null && wait "$SBX_PID" 2>/dev/null
  local n
  for n in $(ip netns list | awk '{print $1}' | grep '^sbxbo-'); do ip netns del "$n"; done
  tools/net-cleanup.sh "$BRIDGE"
  [ -f "$WORK/env/env.sh" ] && tests/env/down.sh "$WORK/env" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

tests/env/up.sh "$WORK/env" >/dev/null || { echo "orch.sh: environment failed" >&2; exit 1; }
# shellcheck disable=SC1091
. "$WORK/env/env.sh"

wait_port() {  # wait_port LOG PID: prints the port the daemon listens on
  local port=""
  for _ in $(seq 1 200); do
    port=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$1" 2>/dev/null | tail -1 | grep -o '[0-9]*"$' | tr -d '"')
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

bin/sbxlet --http-addr 127.0.0.1:0 --state-dir "$WORK/sbxlet" --containerd-address "$CONTAINERD_SOCK" \
  --containerd-namespace benchorch --runtime runc --runtime-root "$RUNC_ROOT/benchorch" \
  --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$SECRET" \
  --bridge-interface "$BRIDGE" --subnet-cidr "$SUBNET" --cni-conf-path "$WORK/sbxlet/cni/20-sbxnet.conflist" \
  --netns-prefix sbxbo- --max-alloc-percent 100 2>"$WORK/sbxlet.log" &
SBX_PID=$!
SBX_PORT=$(wait_port "$WORK/sbxlet.log" "$SBX_PID") || { echo "orch.sh: sbxlet did not start" >&2; exit 1; }
bin/sandboxd-o --http-addr 127.0.0.1:0 --shared-secret "$SECRET" --sqlite-path "$WORK/orch/orchestrator.db" \
  --heartbeat-interval 1s --nodes "[{\"id\":\"n1\",\"ip\":\"127.0.0.1\",\"port\":$SBX_PORT}]" 2>"$WORK/orch.log" &
ORCH_PID=$!
ORCH_PORT=$(wait_port "$WORK/orch.log" "$ORCH_PID") || { echo "orch.sh: sandboxd-o did not start" >&2; exit 1; }
for _ in $(seq 1 100); do
  curl -s -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/nodes/n1" | grep -q '"state":"Ready"' && break
  sleep 0.1
done
log "sbxlet :$SBX_PORT, sandboxd-o :$ORCH_PORT, node Ready"

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
# Exits on SIGTERM at once, so deleting (outside the timed region) is quick.
container='{"name":"m","image":"alpine:3.20","args":["sh","-c","trap \"exit 0\" TERM; sleep 600 & wait"],"resource":{"cpu":"100m","memory":"32Mi"}}'

# time_create URL_BASE CREATE_PATH BODY GET_PATH PHASE: milliseconds from
# the POST until GET_PATH shows PHASE, or fails after 30 s.
time_create() {
  local t0 t1
  t0=$(now_ms)
  curl -s -o /dev/null -H "$H" "$1$2" -d "$3"
  for _ in $(seq 1 3000); do
    if curl -s -H "$H" "$1$4" | grep -q "\"phase\":\"$5\""; then
      t1=$(now_ms)
      echo $((t1 - t0))
      return 0
    fi
    sleep 0.01
  done
  return 1
}
time_direct() {
  time_create "http://127.0.0.1:$SBX_PORT" /v1/sandboxes "{\"id\":\"$1\",\"containers\":[$container]}" \
    "/v1/sandboxes/$1" running
}
time_orch() {
  time_create "http://127.0.0.1:$ORCH_PORT" /api/v1/sandboxes \
    "{\"id\":\"$1\",\"spec\":{\"containers\":[$container]}}" "/api/v1/sandboxes/$1" Running
}
del_direct() { curl -s -o /dev/null -X DELETE -H "$H" "http://127.0.0.1:$SBX_PORT/v1/sandboxes/$1"; }
del_orch() {
  curl -s -o /dev/null -X DELETE -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes/$1"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$H" "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes/$1")" = 404 ] ||
    fail "orch sandbox $1 not gone after delete"
}

time_direct warm-d >/dev/null || fail "warm-up direct"
del_direct warm-d
time_orch warm-o >/dev/null || fail "warm-up orch"
del_orch warm-o

direct=()
orch=()
for i in $(seq 1 "$N"); do
  if t=$(time_direct "d$i"); then direct+=("$t"); else fail "direct d$i never ran"; fi
  del_direct "d$i"
  if t=$(time_orch "o$i"); then orch+=("$t"); else fail "orch o$i never ran"; fi
  del_orch "o$i"
done
log "done: ${#direct[@]} direct, ${#orch[@]} through sandboxd-o"

pct() {  # pct P VALUES...: nearest rank
  local p=$1
  shift
  printf '%s\n' "$@" | sort -n | awk -v p="$p" '{v[NR]=$1} END {if (NR==0) {print "-"; exit} r=int((p*NR+99)/100); if (r<1) r=1; print v[r]}'
}
d50=$(pct 50 "${direct[@]}")
d99=$(pct 99 "${direct[@]}")
o50=$(pct 50 "${orch[@]}")
o99=$(pct 99 "${orch[@]}")
diff=$((o50 - d50))
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet 2>/dev/null || commit="$commit (working tree modified)"
out="bench/results/orch-$(date -u +%Y-%m-%d)-${commit%% *}.md"
# make bench: one section of its report (BENCH_MD), else a file of its own.
[ -n "${BENCH_MD:-}" ] && out=$WORK/section.md
{
  echo "${BENCH_MD:+##}# Create to Running: through sandboxd-o vs directly on sbxlet"
  echo
  echo "$(date -u +%FT%TZ), commit $commit, $(nproc) cores, runc, one node, N=$N sequential each (alternating)."
  echo "One alpine:3.20 container (sh sleeping 600 s, 100m, 32Mi); GET every 10 ms on both paths."
  echo
  echo "| path | n | p50 (ms) | p99 (ms) |"
  echo "|---|---|---|---|"
  echo "| direct on sbxlet | ${#direct[@]} | $d50 | $d99 |"
  echo "| through sandboxd-o | ${#orch[@]} | $o50 | $o99 |"
  echo
  echo "sandboxd-o adds $diff ms at p50 (target <= 50 ms; the reference implementation adds 10-18 s)."
  echo "failures: $FAILS; run time $((SECONDS - T_START)) s"
  echo
} | tee "$out"
[ -n "${BENCH_MD:-}" ] && cat "$out" >> "$BENCH_MD"
[ "$FAILS" -eq 0 ]
