#!/usr/bin/env bash
# bench/create.sh: time to a running sandbox, sbxlet vs bare `ctr run -d`.
#
# Brings up a private containerd + loopback registry (tests/env/up.sh) in a
# temporary directory, and for each runtime (runc, runsc):
#   bare ctr  `ctr -n benchctr run -d --runtime io.containerd.runc.v2
#             --runc-binary B --runc-root R --cpus 0.1 --memory-limit 32Mi
#             IMAGE ID sleep 600`; ctr returns once the task is started, so
#             the command's own run time is the baseline (each task is then
#             checked RUNNING in `ctr task ls`). runsc runs as "$RUNSC_NONE"
#             (--network=none: plain ctr gives it no network namespace of its
#             own; TESTBED.md). The baseline gets the sandbox's own limits
#             (100m = a 10 ms quota per 100 ms, 32Mi): gVisor boots inside the
#             container's cgroup, so under a 100m quota `runsc create` alone
#             takes ~0.7 s instead of ~0.15 s; without the same limits the
#             runsc ratio measures the quota, not sbxlet. BARE_LIMITS=0 runs
#             the bare command without them.
#   sbxlet    bin/sbxlet started as tests/integration/sbxlet_test.sh does
#             (runsc through tools/runsc-host, --network=host); the time from
#             sending POST /v1/sandboxes (one container, alpine:3.20,
#             ["sleep","600"], cpu 100m, memory 32Mi) until
#             GET /v1/sandboxes/{id} shows "phase":"running" (curl every
#             10 ms; timestamps from $EPOCHREALTIME).
# N (20) sequential and CONC (16) concurrent creates of each (concurrent: all launched
# at once, each timed on its own). The image is in containerd beforehand
# (one unmeasured warm-up create per runtime and path), so no create pulls.
# Everything is deleted after each batch, outside the timed region, and
# checked gone. Prints p50/p99 (nearest rank) and the sbxlet/bare p50 ratio,
# and writes the same table to bench/results/create-<date>-<commit>.md.
# Exits non-zero if a create failed, a sandbox never ran, or something leaked.
#
#   N=20 CONC=16 RUNTIMES="runc runsc" BARE_LIMITS=1 bench/create.sh   (as root, offline)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd -P)

N=${N:-20}
CONC=${CONC:-16}  # creates launched at once in the concurrent rows
# A subnet per runtime: each runtime's bridge stays up until the end, and
# two bridges on one subnet would send the second one's probes to the first.
subnet_of() { [ "$1" = runc ] && echo 10.234.0.0/24 || echo 10.234.1.0/24; }
RUNTIMES=${RUNTIMES:-"runc runsc"}
BARE_LIMITS=${BARE_LIMITS:-1}
CTR_NS=benchctr
SECRET=bench-secret-0123456789abcdef
H="Authorization: Bearer $SECRET"
POLL=0.01          # seconds between GETs
CREATE_TIMEOUT=30  # seconds one create may take to reach running
T_START=$SECONDS

[ "$(id -u)" -eq 0 ] || { echo "create.sh: must run as root" >&2; exit 2; }
[ -x bin/sbxlet ] || { echo "create.sh: bin/sbxlet is not built (make)" >&2; exit 2; }
for b in ctr curl awk sort runc runsc; do
  command -v "$b" >/dev/null || { echo "create.sh: $b not found" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/sbxbench.XXXXXX)
ENV_DIR=$WORK/env
TOK=$(tr -dc 'a-z0-9' <<<"${WORK##*.}" | tail -c 7)  # unique per run: our ids
[ -n "$TOK" ] || TOK=$$
PFX=bx$TOK  # every sandbox / container id of this run starts with this
SBX_PID=""
FAILS=0
CTR_CG_EXISTED=0
compgen -G "/sys/fs/cgroup/*/$CTR_NS" >/dev/null && CTR_CG_EXISTED=1
declare -a KIDS=()

log() { echo "create: $* [$((SECONDS - T_START))s]" >&2; }
fail() { FAILS=$((FAILS + 1)); echo "create.sh: FAILED: $*" >&2; }

stop_sbxlet() {
  [ -n "$SBX_PID" ] || return 0
  kill -TERM "$SBX_PID" 2>/dev/null
  for _ in $(seq 1 100); do  # <= 5 s
    kill -0 "$SBX_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$SBX_PID" 2>/dev/null
  wait "$SBX_PID" 2>/dev/null
  SBX_PID=""
}

cleanup() {
  local rc=$? p f
  trap - EXIT INT TERM
  for p in "${KIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  stop_sbxlet
  if [ "$rc" -ne 0 ] && [ -d "$ENV_DIR" ]; then
    for f in "$ENV_DIR"/sbxlet-*/sbxlet.log; do
      [ -f "$f" ] && { echo "--- last lines of $f:" >&2; tail -n 5 "$f" >&2; }
    done
  fi
  [ -d "$ENV_DIR" ] && tests/env/down.sh "$ENV_DIR" >/dev/null
  tools/net-cleanup.sh sbxbench-runc
  tools/net-cleanup.sh sbxbench-runsc
  # Network namespaces pinned by our sbxlet if it was stopped mid-way (only
  # ours: the names carry this run's prefix).
  for f in /var/run/netns/sandboxd-"$PFX"-*; do
    [ -e "$f" ] || continue
    umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null
    rm -f "$f"
  done
  for f in /sys/fs/cgroup/*/sandboxd/"$PFX"-* /sys/fs/cgroup/*/"$CTR_NS"/"$PFX"-*; do
    [ -d "$f" ] && rmdir "$f" 2>/dev/null
  done
  # The cgroup parent runc made for ctr's namespace, if it was not there before.
  if [ "$CTR_CG_EXISTED" = 0 ]; then
    for f in /sys/fs/cgroup/*/"$CTR_NS"; do
      [ -d "$f" ] && rmdir "$f" 2>/dev/null
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sleep without a fork: read with a timeout on a pipe we hold both ends of.
exec {SLEEP_FD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEP_FD" _; }

us_between() { echo $((${2/./} - ${1/./})); }  # microseconds from $1 to $2

# wait_files DIR COUNT SECONDS PID...: until DIR has COUNT files, or kill.
wait_files() {
  local dir=$1 count=$2 deadline=$((SECONDS + $3)) n
  shift 3
  while :; do
    n=$(find "$dir" -maxdepth 1 -type f | wc -l)
    [ "$n" -ge "$count" ] && break
    if [ $SECONDS -ge $deadline ]; then
      fail "only $n of $count results in $dir after $3 s"
      kill -KILL "$@" 2>/dev/null
      break
    fi
    sleep 0.05
  done
  wait "$@" 2>/dev/null
  KIDS=()
}

# --- environment --------------------------------------------------------------
log "bringing up the environment in $ENV_DIR"
tests/env/up.sh "$ENV_DIR" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "tests/env/up.sh"; exit 1; }
# shellcheck disable=SC1091
source "$ENV_DIR/env.sh"
[ "${SBX_ENV_READY:-}" = 1 ] || { fail "env.sh incomplete"; exit 1; }
CTR_IMAGE=$REGISTRY_ADDR/library/alpine:3.20
CTR() { ctr --address "$CONTAINERD_SOCK" --connect-timeout 5s --timeout 30s "$@"; }

log "pulling $CTR_IMAGE into namespace $CTR_NS"
CTR -n "$CTR_NS" images pull --plain-http "$CTR_IMAGE" >"$WORK/pull.log" 2>&1 ||
  { cat "$WORK/pull.log" >&2; fail "ctr images pull"; exit 1; }

# --- bare ctr -----------------------------------------------------------------
CTR_ARGS=()
CTR_LIMITS=()
# What sbxlet gives a container of cpu 100m, memory 32Mi: CFS quota 10000 us
# per 100000 us, memory limit 32 MiB.
[ "$BARE_LIMITS" = 0 ] || CTR_LIMITS=(--cpus 0.1 --memory-limit 33554432)
ctr_runtime() {  # ctr_runtime RT: sets CTR_ARGS
  case $1 in
    runc) CTR_ARGS=(--runtime io.containerd.runc.v2 --runc-binary "$(command -v runc)" --runc-root "$RUNC_ROOT") ;;
    runsc) CTR_ARGS=(--runtime io.containerd.runc.v2 --runc-binary "$RUNSC_NONE" --runc-root "$RUNSC_ROOT") ;;
  esac
  CTR_ARGS+=("${CTR_LIMITS[@]}")
}

# ctr_one ID OUT: one timed `ctr run -d`; writes microseconds (or FAIL) to OUT.
ctr_one() {
  local id=$1 out=$2 t0 t1 rc us
  t0=$EPOCHREALTIME
  CTR -n "$CTR_NS" run -d "${CTR_ARGS[@]}" "$CTR_IMAGE" "$id" sleep 600 >/dev/null 2>>"$WORK/ctr.err"
  rc=$?
  t1=$EPOCHREALTIME
  us=$(us_between "$t0" "$t1")
  if [ $rc -eq 0 ]; then echo "$us" >"$out.tmp"; else echo "FAIL ctr run $id exit $rc" >"$out.tmp"; fi
  mv "$out.tmp" "$out"
}

# ctr_cleanup RT ID...: kill, wait for STOPPED, remove task and container.
ctr_cleanup() {
  local rt=$1 id st
  shift
  for id in "$@"; do CTR -n "$CTR_NS" tasks kill -s KILL "$id" >/dev/null 2>&1; done
  for id in "$@"; do
    for _ in $(seq 1 100); do  # <= ~10 s
      st=$(CTR -n "$CTR_NS" tasks ls 2>/dev/null | awk -v id="$id" '$1==id {print $3}')
      [ -z "$st" ] || [ "$st" = STOPPED ] && break
      sleep 0.1
    done
    CTR -n "$CTR_NS" tasks rm -f "$id" >/dev/null 2>&1
    CTR -n "$CTR_NS" containers rm "$id" >/dev/null 2>&1
    if [ "$rt" = runsc ] && runsc --root "$RUNSC_ROOT/$CTR_NS" state "$id" >/dev/null 2>&1; then
      runsc --root "$RUNSC_ROOT/$CTR_NS" delete --force "$id" >/dev/null 2>&1  # stuck in CREATED
    fi
  done
}

# ctr_batch RT MODE: N creates into $WORK/res/ctr-RT-MODE/
ctr_batch() {
  local rt=$1 mode=$2 dir=$WORK/res/ctr-$1-$2 ids=() i id f tasks st n=$N
  [ "$mode" = concurrent ] && n=$CONC
  mkdir -p "$dir"
  for i in $(seq -w 1 "$n"); do ids+=("$PFX-c-$rt-${mode:0:1}$i"); done
  if [ "$mode" = sequential ]; then
    for i in "${!ids[@]}"; do ctr_one "${ids[$i]}" "$dir/$i"; done
  else
    for i in "${!ids[@]}"; do
      ctr_one "${ids[$i]}" "$dir/$i" &
      KIDS+=($!)
    done
    wait_files "$dir" "$n" 60 "${KIDS[@]}"
  fi
  # Outside the timed region: every task RUNNING, then all removed.
  tasks=$(CTR -n "$CTR_NS" tasks ls 2>/dev/null)
  for i in "${!ids[@]}"; do
    id=${ids[$i]}
    f=$dir/$i
    grep -q '^[0-9]' "$f" 2>/dev/null || { fail "ctr $rt $mode $id: $(cat "$f" 2>/dev/null || echo 'no result')"; continue; }
    st=$(awk -v id="$id" '$1==id {print $3}' <<<"$tasks")
    [ "$st" = RUNNING ] || { fail "ctr $rt $mode $id: task is '$st', not RUNNING"; echo "FAIL not running" >"$f"; }
  done
  ctr_cleanup "$rt" "${ids[@]}"
  [ -z "$(CTR -n "$CTR_NS" containers ls -q)" ] || fail "ctr $rt $mode: containers left: $(CTR -n "$CTR_NS" containers ls -q | tr '\n' ' ')"
  [ -z "$(CTR -n "$CTR_NS" tasks ls -q)" ] || fail "ctr $rt $mode: tasks left"
}

# --- sbxlet -------------------------------------------------------------------
PORT=""
URL=""
STATE=""
SBX_NS=""
start_sbxlet() {  # start_sbxlet RT
  local rt=$1 binary root
  STATE=$ENV_DIR/sbxlet-$rt
  SBX_NS=sbxbench-$rt
  mkdir -p "$STATE"
  case $rt in
    runc) binary=$(command -v runc) root=$RUNC_ROOT ;;
    runsc) binary=$REPO/tools/runsc-host root=$RUNSC_ROOT ;;
  esac
  # --max-alloc-percent 100: N concurrent sandboxes of 100m must fit on a
  # 2-core host (90% of 2000m admits only 18).
  bin/sbxlet --http-addr 127.0.0.1:0 --state-dir "$STATE" --containerd-address "$CONTAINERD_SOCK" \
    --containerd-namespace "$SBX_NS" --runtime "$rt" --runtime-binary "$binary" --runtime-root "$root" \
    --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$SECRET" \
    --max-alloc-percent 100 --shutdown-grace 2 \
    --bridge-interface "sbxbench-$rt" --subnet-cidr "$(subnet_of "$rt")" --cni-conf-path "$STATE/cni.conflist" \
    --netns-prefix "sandboxd-$PFX-" 2>>"$STATE/sbxlet.log" &
  SBX_PID=$!
  PORT=""
  for _ in $(seq 1 200); do  # <= ~10 s
    PORT=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$STATE/sbxlet.log" | tail -1 | grep -o '"port":"[0-9]*"' | grep -o '[0-9]*')
    if [ -n "$PORT" ] && grep -q '"msg":"state recovered"' "$STATE/sbxlet.log"; then
      URL=http://127.0.0.1:$PORT
      return 0
    fi
    kill -0 "$SBX_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 5 "$STATE/sbxlet.log" >&2
  fail "sbxlet ($rt) did not start"
  return 1
}

# sbx_one ID OUT: POST, then GET every 10 ms until running; microseconds (or
# FAIL ...) to OUT.
# With PROBE=1: the seed's http-probe shape instead (an http server on 8080,
# readinessProbe http GET / with initialDelaySeconds 1, periodSeconds 1,
# successThreshold 1; failureThreshold 10: gVisor boots inside the 100m
# quota, and its server is not up within three periods): the time to ready.
# The N probe sandboxes all stay until the end (N x 100m must fit).
sbx_one() {
  local id=$1 out=$2 req t0 t1 code body phase="" deadline us
  req="{\"id\":\"$id\",\"containers\":[{\"name\":\"m\",\"image\":\"alpine:3.20\",\"args\":[\"sleep\",\"600\"],\"resource\":{\"cpu\":\"100m\",\"memory\":\"32Mi\"}}]}"
  if [ "${PROBE:-0}" = 1 ]; then
    req="{\"id\":\"$id\",\"readinessProbe\":{\"protocol\":\"http\",\"port\":8080,\"path\":\"/\",\"initialDelaySeconds\":1,\"periodSeconds\":1,\"timeoutSeconds\":1,\"successThreshold\":1,\"failureThreshold\":10},\"containers\":[{\"name\":\"web\",\"image\":\"python:3.12-alpine\",\"args\":[\"sh\",\"-c\",\"mkdir -p /tmp/www \u0026\u0026 cd /tmp/www \u0026\u0026 echo ok \u003e index.html \u0026\u0026 python -m http.server 8080\"],\"resource\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}]}"
  fi
  t0=$EPOCHREALTIME
  deadline=$((${t0%.*} + CREATE_TIMEOUT))
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST -H "$H" \
    -H 'Content-Type: application/json' --data-raw "$req" "$URL/v1/sandboxes")
  if [ "$code" != 202 ]; then
    echo "FAIL POST $id: HTTP $code" >"$out.tmp"
    mv "$out.tmp" "$out"
    return
  fi
  while :; do
    body=$(curl -s --max-time 5 -H "$H" "$URL/v1/sandboxes/$id")
    # The sandbox's own phase is the first "phase" of the body.
    if [[ $body =~ \"phase\":\"([a-z]+)\" ]]; then phase=${BASH_REMATCH[1]}; fi
    [ "$phase" = running ] && break
    [ "$phase" = error ] && break
    [ "${EPOCHREALTIME%.*}" -lt "$deadline" ] || break
    nap "$POLL"
  done
  t1=$EPOCHREALTIME
  us=$(us_between "$t0" "$t1")
  if [ "$phase" = running ]; then
    echo "$us" >"$out.tmp"
  else
    echo "FAIL $id: phase '$phase' after $((us / 1000)) ms: $(grep -o '"error":"[^"]*"' <<<"$body" | head -1) ${body:0:200}" >"$out.tmp"
  fi
  mv "$out.tmp" "$out"
}

# Deletes every sandbox sbxlet lists (in parallel; each DELETE answers once
# the sandbox is gone: SIGTERM, SIGKILL after 5 s for `sleep` as pid 1).
sbx_delete_all() {
  local ids id pids=() deadline=$((SECONDS + 60))
  while :; do
    ids=$(curl -s --max-time 10 -H "$H" "$URL/v1/sandboxes?limit=200" | grep -o '"id":"[^"]*","phase"' | cut -d'"' -f4)
    [ -z "$ids" ] && return 0
    [ $SECONDS -lt $deadline ] || { fail "sandboxes not deleted: $ids"; return 1; }
    pids=()
    for id in $ids; do
      curl -s -o /dev/null --max-time 30 -X DELETE -H "$H" "$URL/v1/sandboxes/$id" &
      pids+=($!)
    done
    wait "${pids[@]}"
  done
}

sbx_no_leaks() {  # sbx_no_leaks WHAT
  local why="" c
  c=$(CTR -n "$SBX_NS" containers ls -q 2>/dev/null)
  [ -z "$c" ] || why="$why containers:$(tr '\n' ' ' <<<"$c")"
  [ -z "$(CTR -n "$SBX_NS" tasks ls -q 2>/dev/null)" ] || why="$why tasks"
  [ -z "$(CTR -n "$SBX_NS" leases ls -q 2>/dev/null)" ] || why="$why leases"
  CTR -n "$SBX_NS" snapshots ls 2>/dev/null | awk 'NR>1 && $3=="Active"' | grep -q . && why="$why active-snapshots"
  compgen -G "/var/run/netns/sandboxd-$PFX-*" >/dev/null && why="$why netns"
  [ -z "$(ls "$STATE/sandboxes" 2>/dev/null)" ] || why="$why state-dirs"
  [ -z "$why" ] && return 0
  fail "$1: left behind:$why"
}

# sbx_batch RT MODE: N creates into $WORK/res/sbx-RT-MODE/
sbx_batch() {
  local rt=$1 mode=$2 dir=$WORK/res/sbx-$1-$2 ids=() i f avail n=$N
  [ "$mode" = concurrent ] && n=$CONC
  mkdir -p "$dir"
  avail=$(curl -s --max-time 5 -H "$H" "$URL/v1/node/status" | grep -o '"available_cpu_milli":[0-9]*' | cut -d: -f2)
  [ "${avail:-0}" -ge $((n * 100)) ] || fail "sbxlet $rt: only ${avail:-?}m CPU allocatable, $n x 100m needed"
  for i in $(seq -w 1 "$n"); do ids+=("$PFX-s-$rt-${mode:0:1}$i"); done
  if [ "$mode" = probe ]; then
    for i in "${!ids[@]}"; do PROBE=1 sbx_one "${ids[$i]}" "$dir/$i"; done
  elif [ "$mode" = sequential ]; then
    for i in "${!ids[@]}"; do sbx_one "${ids[$i]}" "$dir/$i"; done
  else
    for i in "${!ids[@]}"; do
      sbx_one "${ids[$i]}" "$dir/$i" &
      KIDS+=($!)
    done
    wait_files "$dir" "$n" $((CREATE_TIMEOUT + 15)) "${KIDS[@]}"
  fi
  for f in "$dir"/*; do
    grep -q '^[0-9]' "$f" || fail "sbxlet $rt $mode: $(cat "$f")"
  done
  sbx_delete_all
  sbx_no_leaks "sbxlet $rt $mode"
}

# --- statistics ---------------------------------------------------------------
# stats DIR: "n p50 p99" in ms (nearest rank over the successful samples)
stats() {
  cat "$1"/* 2>/dev/null | grep '^[0-9]' | sort -n | awk '
    { v[NR] = $1 / 1000 }
    END {
      if (NR == 0) { print "0 - -"; exit }
      r50 = int(0.50 * NR); if (r50 < 0.50 * NR) r50++
      r99 = int(0.99 * NR); if (r99 < 0.99 * NR) r99++
      if (r50 < 1) r50 = 1
      if (r99 < 1) r99 = 1
      printf "%d %.1f %.1f\n", NR, v[r50], v[r99]
    }'
}

# --- run ----------------------------------------------------------------------
for rt in $RUNTIMES; do
  ctr_runtime "$rt"
  log "$rt: bare ctr warm-up"
  mkdir -p "$WORK/res/warm"
  ctr_one "$PFX-c-$rt-warm" "$WORK/res/warm/ctr-$rt"
  grep -q '^[0-9]' "$WORK/res/warm/ctr-$rt" || fail "ctr $rt warm-up: $(cat "$WORK/res/warm/ctr-$rt")"
  ctr_cleanup "$rt" "$PFX-c-$rt-warm"
  for mode in sequential concurrent; do
    log "$rt: bare ctr, $([ "$mode" = concurrent ] && echo "$CONC" || echo "$N") $mode"
    ctr_batch "$rt" "$mode"
  done

  start_sbxlet "$rt" || continue
  log "$rt: sbxlet warm-up (pulls alpine:3.20 into $SBX_NS)"
  sbx_one "$PFX-s-$rt-warm" "$WORK/res/warm/sbx-$rt"
  grep -q '^[0-9]' "$WORK/res/warm/sbx-$rt" || fail "sbxlet $rt warm-up: $(cat "$WORK/res/warm/sbx-$rt")"
  PROBE=1 sbx_one "$PFX-s-$rt-warmp" "$WORK/res/warm/sbxp-$rt"  # pulls python:3.12-alpine
  sbx_delete_all
  # The loop's worst turn over the measured batches (GET /v1/node/loop).
  curl -s -o /dev/null --max-time 5 -H "$H" "$URL/v1/node/loop?reset=1"
  for mode in sequential concurrent probe; do
    log "$rt: sbxlet, $([ "$mode" = concurrent ] && echo "$CONC" || echo "$N") $mode"
    sbx_batch "$rt" "$mode"
  done
  curl -s --max-time 5 -H "$H" "$URL/v1/node/loop" > "$WORK/res/loop-$rt"
  { grep -o '"max_stall_us":[0-9]*' "$WORK/res/loop-$rt" | cut -d: -f2
    grep -o '"max_stall_cpu_us":[0-9]*' "$WORK/res/loop-$rt" | cut -d: -f2; } | paste -sd' ' \
    > "$WORK/res/stall-$rt"
  stop_sbxlet
done

# --- report -------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[ -n "$(git status --porcelain 2>/dev/null)" ] && dirty=" (working tree modified)"
table=$WORK/table.md
{
  echo "# Create to running: sbxlet vs bare ctr"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $commit$dirty, $(nproc) cores, kernel $(uname -r),"
  echo "containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}'), runsc $(runsc --version 2>/dev/null | awk 'NR==1 {print $3}')."
  echo "$N sequential creates (1 in flight) and $CONC concurrent (all launched at once) per runtime; image cached; one alpine:3.20 container, sleep 600."
  sbx_env=$(env | grep '^SBXLET_' | sort | paste -sd ' ')
  echo "sbxlet: default settings but --max-alloc-percent 100${sbx_env:+; from the environment: $sbx_env}."
  if [ "$BARE_LIMITS" = 0 ]; then lim="no limits"; else lim="--cpus 0.1 --memory-limit 32Mi, as sbxlet sets"; fi
  echo "bare: \`ctr run -d\` run time ($lim; runsc: --network=none); sbxlet: POST → GET shows running (curl every 10 ms; runsc: tools/runsc-host, --network=host)."
  echo
  echo "| runtime | mode | n (bare/sbxlet) | bare p50 (ms) | bare p99 (ms) | sbxlet p50 (ms) | sbxlet p99 (ms) | ratio p50 |"
  echo "|---|---|---|---|---|---|---|---|"
  for rt in $RUNTIMES; do
    for mode in sequential concurrent; do
      read -r bn b50 b99 <<<"$(stats "$WORK/res/ctr-$rt-$mode")"
      read -r sn s50 s99 <<<"$(stats "$WORK/res/sbx-$rt-$mode")"
      ratio=$(awk -v s="$s50" -v b="$b50" 'BEGIN { if (s+0 > 0 && b+0 > 0) printf "%.2f", s/b; else print "-" }')
      echo "| $rt | $mode | $bn/$sn | $b50 | $b99 | $s50 | $s99 | $ratio |"
    done
  done
  for rt in $RUNTIMES; do
    read -r sn s50 s99 <<<"$(stats "$WORK/res/sbx-$rt-probe")"
    echo "| $rt | sequential, http probe (create → ready) | -/$sn | - | - | $s50 | $s99 | vs Go: $(awk -v s="$s50" 'BEGIN { if (s+0 > 0) printf "%.2f", s/2054; else print "-" }') |"
  done
  echo
  echo "target: p50 ratio <= 1.15; the probe rows: the Go implementation's published create → ready is p50 2,054 ms / p99 3,097 ms (ratio vs its p50)"
  stalls=""
  for rt in $RUNTIMES; do
    read -r wall cpu < "$WORK/res/stall-$rt" 2>/dev/null || true
    stalls="$stalls $rt ${wall:-?} us wall (${cpu:-?} us of loop-thread CPU);"
  done
  echo "sbxlet worst event-loop turn during the batches:$stalls target < 5000 us"
  echo "run time: $((SECONDS - T_START)) s; failures: $FAILS"
} >"$table"
echo
cat "$table"
if [ -n "${BENCH_MD:-}" ]; then
  # make bench: one section of its report (headings one level down).
  sed 's/^# /### /' "$table" >> "$BENCH_MD"
else
  mkdir -p bench/results
  out=bench/results/create-$(date +%Y-%m-%d)-$commit.md
  cp "$table" "$out"
  echo "written to $out"
fi
[ "$FAILS" -eq 0 ]
