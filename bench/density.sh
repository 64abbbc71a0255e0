#!/usr/bin/env bash
# bench/density.sh: memory per sandbox.
#
# 1. Hollow (runtime "sim", state on tmpfs): sbxlet's RSS with 0 sandboxes,
#    with HOLLOW (10,000) created by bin/loadgen, and after deleting them
#    all; bytes per sandbox = (RSS at HOLLOW - RSS at 0) / HOLLOW (target
#    < 4 KiB). RssAnon is reported too: RSS also counts the binary's pages
#    that the create path touches once.
# 2. Real (runc): REAL (100) sandboxes of busybox `sleep 3600` (cpu 10m,
#    memory 16Mi) on a private containerd (tests/env/up.sh) and a bridge and
#    subnet of their own. Memory per sandbox, split by who holds it, as the
#    growth of proportional set size (PSS: shared pages divided among their
#    users) from 0 to REAL sandboxes:
#      sbxlet, containerd, shims (containerd-shim-runc-v2 of our namespace),
#      the sandboxes' own processes, and the rest of the host's used memory
#      (MemTotal - MemAvailable): the kernel's share (netns, veths, overlay
#      mounts, cgroups, page cache).
#    runc itself exits once a container has started: it holds nothing.
# Appends a markdown section to $BENCH_MD when set (make bench). Exits
# non-zero if a create failed or something leaked.
#
#   HOLLOW=10000 REAL=100 bench/density.sh   (as root, offline)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd -P)

HOLLOW=${HOLLOW:-10000}
REAL=${REAL:-100}
SECRET=bench-density-secret-0123456789
H="Authorization: Bearer $SECRET"
NS=benchdensity
BRIDGE=sbxbd0
SUBNET=10.235.0.0/22
T_START=$SECONDS

[ "$(id -u)" -eq 0 ] || { echo "density.sh: must run as root" >&2; exit 2; }
for b in bin/sbxlet bin/loadgen; do
  [ -x "$b" ] || { echo "density.sh: $b is not built (make bench)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/sbxbench-density.XXXXXX)
SHM=$(mktemp -d /dev/shm/sbxbench-density.XXXXXX)
SBX_PID=""
FAILS=0
log() { echo "density: $* [$((SECONDS - T_START))s]" >&2; }
fail() { FAILS=$((FAILS + 1)); echo "density.sh: FAILED: $*" >&2; }

stop_sbxlet() {
  [ -n "$SBX_PID" ] || return 0
  kill -TERM "$SBX_PID" 2>/dev/null
  wait "$SBX_PID" 2>/dev/null
  SBX_PID=""
}
cleanup() {
  stop_sbxlet
  local f
  for f in /var/run/netns/sbxbd-*; do
    [ -e "$f" ] || continue
    umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null
    rm -f "$f"
  done
  tools/net-cleanup.sh "$BRIDGE" >/dev/null 2>&1
  [ -f "$WORK/env/env.sh" ] && tests/env/down.sh "$WORK/env" >/dev/null 2>&1
  rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# listening_port LOG PID [READY_MSG] (and the counting helpers, unused here)
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh
field_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
pss_kib() {  # pss_kib PID...: summed PSS
  local p sum=0 v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
used_kib() { awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print t - a}' /proc/meminfo; }
loadgen() { bin/loadgen --api sbxlet --target "127.0.0.1:$PORT" --secret "$SECRET" "$@"; }

# ---- 1. hollow ---------------------------------------------------------------------------
log "hollow: sbxlet with runtime sim, $HOLLOW sandboxes"
bin/sbxlet --runtime sim --http-addr 127.0.0.1:0 --state-dir "$SHM/hollow" --shared-secret "$SECRET" \
  --sim-start-latency 10ms --sim-cpu 1000 --sim-memory 4Ti --worker-threads 4 \
  --cni-conf-path "$SHM/none.conflist" 2>"$SHM/hollow.log" &
SBX_PID=$!
PORT=$(listening_port "$SHM/hollow.log" "$SBX_PID" "state recovered") || { echo "density.sh: sbxlet did not start" >&2; exit 1; }
sleep 0.5
H_RSS0=$(field_kib "$SBX_PID" VmRSS)
H_ANON0=$(field_kib "$SBX_PID" RssAnon)
loadgen --mix create=1 --count "$HOLLOW" --concurrency 64 --wait-running --id-prefix hd- \
  >"$WORK/hollow-create.out" 2>&1 || fail "hollow creates: $(tail -3 "$WORK/hollow-create.out")"
sleep 0.5
H_RSS1=$(field_kib "$SBX_PID" VmRSS)
H_ANON1=$(field_kib "$SBX_PID" RssAnon)
H_STALL=$(curl -s -H "$H" "http://127.0.0.1:$PORT/v1/node/loop" | grep -o '"max_stall_us":[0-9]*' | cut -d: -f2)
have=$(curl -s -H "$H" "http://127.0.0.1:$PORT/v1/node/status" | grep -o '"sandboxes":[0-9]*' | cut -d: -f2)
[ "$have" = "$HOLLOW" ] || fail "hollow node holds $have sandboxes, not $HOLLOW"
# Delete them all (every id is known: hd-0 .. hd-N-1 is loadgen's naming,
# but list them to be sure).
ids=()
cursor=""
while :; do
  page=$(curl -s -H "$H" "http://127.0.0.1:$PORT/v1/sandboxes?limit=200${cursor:+&cursor=$cursor}")
  mapfile -t -O "${#ids[@]}" ids < <(echo "$page" | grep -o '"id":"hd-[^"]*"' | cut -d'"' -f4 | grep -v -- '-main$')
  cursor=$(echo "$page" | grep -o '"next_cursor":"[^"]*"' | cut -d'"' -f4)
  [ -n "$cursor" ] || break
done
printf '%s\n' "${ids[@]}" | xargs -P 8 -n 50 sh -c 'for id; do curl -s -o /dev/null -X DELETE -H "$0" "$1/v1/sandboxes/$id"; done' "$H" "http://127.0.0.1:$PORT" 2>/dev/null ||
  true
sleep 0.5
left=$(curl -s -H "$H" "http://127.0.0.1:$PORT/v1/node/status" | grep -o '"sandboxes":[0-9]*' | cut -d: -f2)
[ "$left" = 0 ] || fail "$left hollow sandboxes left after deleting all"
dirs=$(find "$SHM/hollow/sandboxes" -mindepth 1 -maxdepth 1 | wc -l)
[ "$dirs" = 0 ] || fail "$dirs state directories left after deleting all"
H_RSS2=$(field_kib "$SBX_PID" VmRSS)
stop_sbxlet
H_PER=$(( (H_RSS1 - H_RSS0) * 1024 / HOLLOW ))
H_PER_ANON=$(( (H_ANON1 - H_ANON0) * 1024 / HOLLOW ))
log "hollow: RSS $H_RSS0 → $H_RSS1 KiB ($H_PER B/sandbox), after delete $H_RSS2 KiB"

# ---- 2. real runc ----------------------------------------------------------------------
log "real: environment"
tests/env/up.sh "$WORK/env" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "tests/env/up.sh"; exit 1; }
# shellcheck disable=SC1091
. "$WORK/env/env.sh"
CTRD_PID=${CONTAINERD_PID:-}
[ -n "$CTRD_PID" ] || { fail "containerd pid not found in env.sh"; exit 1; }
mkdir -p "$WORK/real"
bin/sbxlet --http-addr 127.0.0.1:0 --state-dir "$WORK/real" --containerd-address "$CONTAINERD_SOCK" \
  --containerd-namespace "$NS" --runtime runc --runtime-root "$RUNC_ROOT/$NS" \
  --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$SECRET" \
  --max-alloc-percent 100 --shutdown-grace 2 --bridge-interface "$BRIDGE" --subnet-cidr "$SUBNET" \
  --cni-conf-path "$WORK/real/cni.conflist" --netns-prefix sbxbd- 2>"$WORK/real.log" &
SBX_PID=$!
PORT=$(listening_port "$WORK/real.log" "$SBX_PID" "state recovered") || { echo "density.sh: sbxlet did not start" >&2; exit 1; }
# One warm-up sandbox pulls the image; it is deleted before the baseline.
loadgen --mix create=1 --count 1 --concurrency 1 --wait-running --cleanup --id-prefix bdw- \
  --image docker.io/library/busybox:latest >"$WORK/warm.out" 2>&1 || fail "warm-up: $(tail -3 "$WORK/warm.out")"
sync
echo 1 > /proc/sys/vm/drop_caches 2>/dev/null
sleep 1
shims() { pgrep -f "containerd-shim-runc-v2 -namespace $NS " | tr '\n' ' '; }
R_SBX0=$(pss_kib "$SBX_PID"); R_CTRD0=$(pss_kib "$CTRD_PID"); R_USED0=$(used_kib)
log "real: $REAL runc sandboxes"
loadgen --mix create=1 --count "$REAL" --concurrency 8 --wait-running --id-prefix bd- \
  --image docker.io/library/busybox:latest >"$WORK/real-create.out" 2>&1 ||
  fail "real creates: $(tail -3 "$WORK/real-create.out")"
sleep 2
# shellcheck disable=SC2046
R_SHIMS=$(pss_kib $(shims))
N_SHIMS=$(shims | wc -w)
kids=""
for s in $(shims); do kids+=" $(pgrep -P "$s" | tr '\n' ' ')"; done
# shellcheck disable=SC2086
R_PROCS=$(pss_kib $kids)
R_SBX1=$(pss_kib "$SBX_PID"); R_CTRD1=$(pss_kib "$CTRD_PID"); R_USED1=$(used_kib)
running=$(curl -s -H "$H" "http://127.0.0.1:$PORT/v1/sandboxes?limit=200" | grep -o '"phase":"running","namespace"' | wc -l)
[ "$running" -eq "$REAL" ] || fail "$running of $REAL real sandboxes running"
per() { awk -v v="$1" -v n="$REAL" 'BEGIN { printf "%.0f", v / n }'; }
D_SBX=$((R_SBX1 - R_SBX0)); D_CTRD=$((R_CTRD1 - R_CTRD0)); D_USED=$((R_USED1 - R_USED0))
D_KERNEL=$((D_USED - D_SBX - D_CTRD - R_SHIMS - R_PROCS))
log "real: deleting"
curl -s -H "$H" "http://127.0.0.1:$PORT/v1/sandboxes?limit=200" | grep -o '"id":"bd-[^"]*"' | cut -d'"' -f4 |
  grep -v -- '-main$' | xargs -P 8 -I{} curl -s -o /dev/null -X DELETE -H "$H" "http://127.0.0.1:$PORT/v1/sandboxes/{}"
left=$(curl -s -H "$H" "http://127.0.0.1:$PORT/v1/node/status" | grep -o '"sandboxes":[0-9]*' | cut -d: -f2)
[ "$left" = 0 ] || fail "$left real sandboxes left after deleting all"
[ "$(shims | wc -w)" = 0 ] || fail "shims left after deleting all"
[ -z "$(ls /var/run/netns 2>/dev/null | grep '^sbxbd-')" ] || fail "network namespaces left after deleting all"

{
  echo "### Density"
  echo
  echo "Hollow node (runtime sim, state on tmpfs): sbxlet RSS $((H_RSS0 / 1024)) MiB with 0 sandboxes,"
  echo "$((H_RSS1 / 1024)) MiB with $HOLLOW, $((H_RSS2 / 1024)) MiB after deleting them all."
  echo
  echo "| figure | value | target |"
  echo "|---|---|---|"
  echo "| sbxlet RSS per hollow sandbox | **$H_PER B** (anonymous memory: $H_PER_ANON B) | < 4,096 B |"
  echo "| worst loop stall while creating $HOLLOW | $((H_STALL / 1000)).$(( (H_STALL % 1000) / 100 )) ms | < 5 ms |"
  echo
  echo "$REAL real runc sandboxes (busybox sleep, cpu 10m, memory 16Mi), memory per sandbox by holder"
  echo "(growth of PSS from 0 to $REAL sandboxes; \"kernel and rest\" = host used memory growth minus the others):"
  echo
  echo "| holder | per sandbox |"
  echo "|---|---|"
  echo "| sbxlet | $(per "$D_SBX") KiB |"
  echo "| containerd | $(per "$D_CTRD") KiB |"
  echo "| shims ($N_SHIMS containerd-shim-runc-v2) | $(per "$R_SHIMS") KiB |"
  echo "| the sandboxes' processes (runc has exited) | $(per "$R_PROCS") KiB |"
  echo "| kernel and rest (netns, veth, overlay, cgroups, page cache) | $(per "$D_KERNEL") KiB |"
  echo "| **host total** | **$(per "$D_USED") KiB** |"
  echo
} > "$WORK/section.md"
cat "$WORK/section.md"
[ -n "${BENCH_MD:-}" ] && cat "$WORK/section.md" >> "$BENCH_MD"
log "done, $FAILS failures"
[ "$FAILS" -eq 0 ]
