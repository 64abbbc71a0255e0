#!/usr/bin/env bash
# Integration: the real bin/sbxlet against the private containerd and
# registry of tests/env (run through tools/run-integration.sh, which exports
# CONTAINERD_SOCK, REGISTRY_ADDR, RUNC_ROOT, RUNSC_ROOT, SBX_ENV_DIR). Every
# case runs with runc and with runsc. Prints "sbxlet: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

: "${CONTAINERD_SOCK:?run through tools/run-integration.sh}"
passed=0
failed=0
SECRET=integration-secret-0123456789
H="Authorization: Bearer $SECRET"
SBX_PID=""
PORT=""
STARTS=0

cleanup() {
  [ -n "$SBX_PID" ] && kill -KILL "$SBX_PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*" >&2; }
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok; else bad "$name"; fi
}

CTR() { ctr --address "$CONTAINERD_SOCK" -n "$NS" "$@"; }

# Starts sbxlet for runtime $1 with extra flags; sets SBX_PID and PORT.
start_sbxlet() {
  local rt=$1
  shift
  STATE="$SBX_ENV_DIR/sbxlet-$rt"
  NS="sbxit-$rt"
  mkdir -p "$STATE" "$SBX_ENV_DIR/bin"
  local binary=runc root=$RUNC_ROOT/sbxlet
  if [ "$rt" = runsc ]; then
    # This runsc build refuses netstack inside a network namespace; each
    # container's gVisor sandbox joins the sandbox's netns with the host
    # stack instead (see README: runtimes).
    binary=$(pwd -P)/tools/runsc-host
    root=$RUNSC_ROOT/sbxlet
  fi
  RTROOT=$root
  STARTS=$((STARTS + 1))
  LOG="$STATE/sbxlet.$STARTS.log"  # a fresh log per start: no stale "listening" line
  bin/sbxlet --http-addr 127.0.0.1:0 --state-dir "$STATE" --containerd-address "$CONTAINERD_SOCK" \
    --containerd-namespace "$NS" --runtime "$rt" --runtime-binary "$binary" --runtime-root "$root" \
    --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$SECRET" \
    --shutdown-grace 2 "$@" 2>"$LOG" &
  SBX_PID=$!
  PORT=""
  for _ in $(seq 1 200); do
    PORT=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$LOG" | tail -1 | grep -o '"port":"[0-9]*"' | grep -o '[0-9]*')
    if [ -n "$PORT" ] && grep -q '"msg":"state recovered"' "$LOG"; then return 0; fi
    kill -0 "$SBX_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "sbxlet did not start; log:" >&2
  tail -5 "$LOG" >&2
  return 1
}

stop_sbxlet() {
  kill -TERM "$SBX_PID" 2>/dev/null
  wait "$SBX_PID" 2>/dev/null
  SBX_PID=""
}

# call METHOD PATH [BODY]: sets BODY and CODE (no subshell, so both stick).
call() {
  local out
  out=$(curl -s -w '\n%{http_code}' -X "$1" -H "$H" "http://127.0.0.1:$PORT$2" ${3:+-d "$3"})
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
# api METHOD PATH [BODY]: the body on stdout (for pipes; CODE is not kept).
api() {
  call "$@"
  printf '%s' "$BODY"
}

phase_of() { api GET "/v1/sandboxes/$1" | grep -o '"phase":"[a-z]*"' | head -1 | cut -d'"' -f4; }

# wait_phase ID PHASE [SECONDS]
wait_phase() {
  local deadline=$((SECONDS + ${3:-30})) p
  while [ $SECONDS -lt $deadline ]; do
    p=$(phase_of "$1")
    [ "$p" = "$2" ] && return 0
    sleep 0.1
  done
  echo "sandbox $1: phase '$p', wanted '$2'" >&2
  return 1
}

# wait_log ID TEXT [SECONDS]
wait_log() {
  local deadline=$((SECONDS + ${3:-20}))
  while [ $SECONDS -lt $deadline ]; do
    api GET "/v1/sandboxes/$1/logs" | grep -qF -- "$2" && return 0
    sleep 0.1
  done
  echo "sandbox $1: log never showed '$2': $(api GET "/v1/sandboxes/$1/logs")" >&2
  return 1
}

container() {  # container NAME IMAGE CPU MEMORY ARGS-JSON [EXTRA-JSON]
  printf '{"name":"%s","image":"%s","args":%s,"resource":{"cpu":"%s","memory":"%s"%s}}' \
    "$1" "$2" "$5" "$3" "$4" "${6:-}"
}

delete_all() {
  local ids
  ids=$(api GET "/v1/sandboxes?limit=200" | grep -o '"id":"[^"]*","phase"' | cut -d'"' -f4)
  for id in $ids; do api DELETE "/v1/sandboxes/$id" >/dev/null; done
}

no_leaks() {  # everything the runtime's sandboxes owned is gone
  local why=""
  [ -z "$(CTR containers ls -q)" ] || why="$why containers:$(CTR containers ls -q | tr '\n' ' ')"
  [ -z "$(CTR tasks ls -q 2>/dev/null)" ] || why="$why tasks"
  CTR snapshots ls | awk 'NR>1 && $3=="Active"' | grep -q . && why="$why active-snapshots"
  [ -z "$(CTR leases ls -q)" ] || why="$why leases:$(CTR leases ls -q | tr '\n' ' ')"
  ls /var/run/netns 2>/dev/null | grep -q "^sandboxd-sbxit" && why="$why netns"
  [ -z "$(ls "$STATE/sandboxes" 2>/dev/null)" ] || why="$why state-dirs"
  [ -z "$(ls "$RTROOT" 2>/dev/null)" ] || why="$why runtime-roots:$(ls "$RTROOT" | tr '\n' ' ')"
  grep -q "sbxit-" /proc/self/mountinfo && why="$why mounts"
  for ctl in memory cpu pids; do
    [ -d "/sys/fs/cgroup/$ctl/sandboxd" ] || continue
    find "/sys/fs/cgroup/$ctl/sandboxd" -mindepth 1 -type d -name "sbxit-*" | grep -q . && why="$why cgroups($ctl)"
  done
  [ -z "$why" ] && return 0
  echo "leaks:$why" >&2
  return 1
}

run_suite() {
  local rt=$1 p="sbxit-$1"
  check "$rt: sbxlet starts" start_sbxlet "$rt" --log-read-limit-container 64Ki || return

  # Authentication: /healthz is open, everything else needs the secret.
  check "$rt: healthz open" test "$(curl -s "http://127.0.0.1:$PORT/healthz")" = '{"ok":true}'
  check "$rt: 401 without token" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/sandboxes")" = 401
  check "$rt: 401 with a wrong token" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "http://127.0.0.1:$PORT/v1/node/status")" = 401
  call GET /v1/node/status
  check "$rt: node status" test "$CODE" = 200
  call GET "/v1/node/loop?reset=1"
  check "$rt: loop stats" bash -c "grep -q '\"max_stall_us\":[0-9]' <<<'$BODY'"

  # Two containers share the sandbox's 127.0.0.1.
  local srv cli
  srv=$(container srv alpine:3.20 250m 64Mi '["sh","-c","nc -l -p 7070 -e echo pong-from-srv; sleep 300"]')
  cli=$(container cli alpine:3.20 100m 32Mi '["sh","-c","for i in 1 2 3 4 5 6 7 8 9 10; do echo ping | nc 127.0.0.1 7070 && break; sleep 0.3; done; sleep 300"]')
  call POST /v1/sandboxes "{\"id\":\"$p-pair\",\"containers\":[$srv,$cli]}"
  check "$rt: create answers 202" test "$CODE" = 202
  check "$rt: pair running" wait_phase "$p-pair" running
  check "$rt: containers talk over 127.0.0.1" wait_log "$p-pair" "[cli] pong-from-srv"
  local body
  call GET "/v1/sandboxes/$p-pair"
  body=$BODY
  check "$rt: taskPID reported" bash -c "grep -q '\"taskPID\":[1-9]' <<<'$body'"
  check "$rt: image normalized" bash -c "grep -q 'docker.io/library/alpine:3.20' <<<'$body'"
  check "$rt: runtime reported" bash -c "grep -q '\"runtime\":\"$rt\"' <<<'$body'"

  # Container ids that are prefixes of each other ("<sandbox>-<name>": px-a
  # and px-a-b), which runsc would find ambiguous in a shared root.
  call POST /v1/sandboxes "{\"id\":\"$p-px\",\"containers\":[$(container a alpine:3.20 100m 16Mi '["sleep","300"]')]}"
  call POST /v1/sandboxes "{\"id\":\"$p-px-a\",\"containers\":[$(container b alpine:3.20 100m 16Mi '["sleep","300"]')]}"
  check "$rt: prefix ids: first running" wait_phase "$p-px" running
  check "$rt: prefix ids: second running" wait_phase "$p-px-a" running
  call DELETE "/v1/sandboxes/$p-px"
  check "$rt: prefix ids: delete one" test "$CODE" = 200
  check "$rt: prefix ids: the other still running" test "$(phase_of "$p-px-a")" = running

  # The image's Entrypoint/Cmd/Env/WorkingDir, and the request's env over it.
  api POST /v1/sandboxes "{\"id\":\"$p-cfg\",\"containers\":[$(container main sandboxd-test/config:1 100m 32Mi '[]' ',"x":1')]}" >/dev/null
  check "$rt: image config honoured" wait_log "$p-cfg" "[main] entry-from-image-/work"
  api POST /v1/sandboxes "{\"id\":\"$p-cfg2\",\"containers\":[{\"name\":\"main\",\"image\":\"sandboxd-test/config:1\",\"env\":[\"FOO=from-request\"],\"workDir\":\"/tmp\",\"resource\":{\"cpu\":\"100m\",\"memory\":\"32Mi\"}}]}" >/dev/null
  check "$rt: request env and workDir win" wait_log "$p-cfg2" "[main] entry-from-request-/tmp"

  # Memory limit: a process past it is killed and the container says so.
  api POST /v1/sandboxes "{\"id\":\"$p-oom\",\"containers\":[$(container hog alpine:3.20 100m 32Mi '["sh","-c","exec tail /dev/zero"]')]}" >/dev/null
  check "$rt: over the memory limit → error" wait_phase "$p-oom" error 60
  call GET "/v1/sandboxes/$p-oom"
  body=$BODY
  check "$rt: exit code 137 shown" bash -c "grep -q '\"exitCode\":137' <<<'$body'"
  check "$rt: sandbox error names the container" bash -c "grep -q 'container hog exited with code 137' <<<'$body'"

  # CPU quota in the cgroup (250m → 25000us per 100000us).
  local quota
  quota=$(find /sys/fs/cgroup/cpu/sandboxd -path "*$p-pair-srv*" -name cpu.cfs_quota_us -exec cat {} \; 2>/dev/null | head -1)
  check "$rt: cpu quota in the cgroup (got '$quota')" test "$quota" = 25000

  # /tmp is a tmpfs of 20% of ephemeralStorage: writing past it is ENOSPC.
  api POST /v1/sandboxes "{\"id\":\"$p-tmp\",\"containers\":[$(container w alpine:3.20 100m 32Mi '["sh","-c","dd if=/dev/zero of=/tmp/big bs=1M count=8 2>&1; echo dd-done; sleep 300"]' ',"ephemeralStorage":"10Mi"')]}" >/dev/null
  check "$rt: /tmp full → ENOSPC" wait_log "$p-tmp" "No space left on device"

  # Logs over the read limit → 413.
  api POST /v1/sandboxes "{\"id\":\"$p-chatty\",\"containers\":[$(container c alpine:3.20 100m 32Mi '["sh","-c","head -c 100000 /dev/zero | tr \"\\\\0\" x; echo; echo chatty-done; sleep 300"]')]}" >/dev/null
  wait_phase "$p-chatty" running >/dev/null
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    call GET "/v1/sandboxes/$p-chatty/logs"
    [ "$CODE" = 413 ] && break
    sleep 0.2
  done
  check "$rt: logs past the limit → 413" test "$CODE" = 413
  call GET "/v1/sandboxes/$p-chatty/containers/c/logs"
  check "$rt: per-container logs past the limit → 413" test "$CODE" = 413
  call GET "/v1/sandboxes/$p-pair/containers/srv/logs"
  check "$rt: per-container logs" test "$CODE" = 200
  call GET "/v1/sandboxes/$p-pair/containers/nope/logs"
  check "$rt: unknown container logs → 404" test "$CODE" = 404

  # A missing image fails the sandbox with the pull's reason.
  api POST /v1/sandboxes "{\"id\":\"$p-nope\",\"containers\":[$(container m sandboxd-test/nope:1 100m 32Mi '["true"]')]}" >/dev/null
  check "$rt: missing image → error" wait_phase "$p-nope" error 30
  check "$rt: pull error message" bash -c "curl -s -H '$H' http://127.0.0.1:$PORT/v1/sandboxes/$p-nope | grep -q 'pull image \\\\\"sandboxd-test/nope:1\\\\\"'"

  # Admission, duplicate ids, validation: 400 with the contract's messages.
  call POST /v1/sandboxes "{\"id\":\"$p-big\",\"containers\":[$(container m alpine:3.20 64 32Mi '[]')]}"
  body=$BODY
  check "$rt: admission 400" test "$CODE" = 400
  check "$rt: admission message" bash -c "grep -q 'insufficient cpu allocatable: requested=64000m used=[0-9]*m limit=[0-9]*m (90% of host)' <<<'$body'"
  call POST /v1/sandboxes "{\"id\":\"$p-pair\",\"containers\":[$srv]}"
  body=$BODY
  check "$rt: duplicate id" test "$body" = "{\"error\":\"sandbox already exists: $p-pair\"}"
  call POST /v1/sandboxes '{"containers":[{"name":"a","image":"alpine","resource":{"cpu":"1","memory":"1Mi"}}],"ports":[{"hostPort":"x"}]}'
  body=$BODY
  check "$rt: wrong type names the field" test "$body" = '{"error":"ports[0].hostPort: expected integer"}'
  call POST /v1/sandboxes '{"containers":[{"name":"web","image":"alpine","resource":{"memory":"1Mi"}}]}'
  body=$BODY
  check "$rt: cpu is required" test "$body" = '{"error":"container web: cpu is required"}'
  call POST /v1/sandboxes '{'
  body=$BODY
  check "$rt: malformed JSON → 400" test "$CODE" = 400
  call POST /v1/sandboxes/statuses "{\"ids\":[\"$p-pair\",\"ghost\"]}"
  body=$BODY
  check "$rt: statuses" bash -c "grep -q '\"missing\":\\[\"ghost\"\\]' <<<'$body' && grep -q '\"id\":\"$p-pair\",\"phase\":\"running\"' <<<'$body'"
  call GET "/v1/sandboxes?limit=2"
  body=$BODY
  check "$rt: list pages with next_cursor" bash -c "grep -q '\"next_cursor\"' <<<'$body'"
  call GET /v1/sandboxes/ghost
  check "$rt: unknown sandbox → 404" test "$CODE" = 404

  # Delete: idempotent, and nothing is left behind.
  delete_all
  call DELETE /v1/sandboxes/ghost
  check "$rt: delete of an unknown id is 200" test "$CODE" = 200
  check "$rt: delete leaves nothing behind" no_leaks

  # 50 concurrent creates for the last CPUs: exactly as many as fit.
  local avail fits
  avail=$(api GET /v1/node/status | grep -o '"available_cpu_milli":[0-9]*' | cut -d: -f2)
  fits=$((avail / 100))
  seq 1 50 | xargs -P 50 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "$H" \
    "http://127.0.0.1:$PORT/v1/sandboxes" \
    -d "{\"id\":\"$p-race-{}\",\"containers\":[$(container m alpine:3.20 100m 16Mi '["sleep","300"]')]}" \
    > "$STATE/race.codes"
  check "$rt: concurrent admission admits exactly $fits" test "$(grep -c '^202$' "$STATE/race.codes")" = "$fits"
  check "$rt: the rest are refused with 400" test "$(grep -c '^400$' "$STATE/race.codes")" = $((50 - fits))

  # kill -9 during creates, restart: no sandbox lost, none left half made.
  delete_all
  for i in 1 2 3 4 5 6; do
    api POST /v1/sandboxes "{\"id\":\"$p-crash-$i\",\"containers\":[$(container m alpine:3.20 100m 16Mi '["sleep","300"]')]}" >/dev/null &
  done
  sleep 0.3
  kill -KILL "$SBX_PID"
  wait 2>/dev/null
  SBX_PID=""
  check "$rt: restart after kill -9" start_sbxlet "$rt"
  local ids phase stuck=0 lost=0
  ids=$(ls "$STATE/sandboxes" 2>/dev/null)
  for id in $ids; do
    for _ in $(seq 1 100); do
      phase=$(phase_of "$id")
      [ "$phase" = running ] || [ "$phase" = error ] && break
      sleep 0.1
    done
    [ "$phase" = running ] || [ "$phase" = error ] || stuck=$((stuck + 1))
    [ -n "$phase" ] || lost=$((lost + 1))
  done
  check "$rt: after the crash every sandbox is running or error" test "$stuck" = 0
  check "$rt: no sandbox lost" test "$lost" = 0
  delete_all
  check "$rt: after crash and delete nothing is left" no_leaks

  # kill -9 during deletes (as soon as one is under way), restart: every
  # deletion under way is finished; the rest are still running.
  for i in 1 2 3 4; do
    api POST /v1/sandboxes "{\"id\":\"$p-del-$i\",\"containers\":[$(container m alpine:3.20 100m 16Mi '["sh","-c","trap \"exit 0\" TERM; sleep 300 & wait"]')]}" >/dev/null
  done
  for i in 1 2 3 4; do wait_phase "$p-del-$i" running >/dev/null; done
  for i in 1 2 3 4; do
    api DELETE "/v1/sandboxes/$p-del-$i" >/dev/null &
  done
  for _ in $(seq 1 100); do
    grep -qs '"phase":"deleting"' "$STATE"/sandboxes/*/state.json && break
    sleep 0.02
  done
  kill -KILL "$SBX_PID"
  wait 2>/dev/null
  SBX_PID=""
  check "$rt: restart after kill -9 during deletes" start_sbxlet "$rt"
  local undone=""
  for _ in $(seq 1 150); do
    undone=""
    for id in $(ls "$STATE/sandboxes" 2>/dev/null); do
      [ "$(phase_of "$id")" = running ] || undone="$undone $id"
    done
    [ -z "$undone" ] && break
    sleep 0.1
  done
  check "$rt: interrupted deletes are finished (left:$undone)" test -z "$undone"
  delete_all
  check "$rt: after a crash during deletes nothing is left" no_leaks
  stop_sbxlet
}

# SBXIT_RUNTIMES="runsc" runs one runtime only (for debugging).
for rt in ${SBXIT_RUNTIMES:-runc runsc}; do run_suite "$rt"; done
echo "sbxlet: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
