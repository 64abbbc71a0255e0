#!/usr/bin/env bash
# Integration: the real bin/sbxlet against the private containerd and
# registry of tests/env (run through tools/run-integration.sh, which exports
# CONTAINERD_SOCK, REGISTRY_ADDR, RUNC_ROOT, RUNSC_ROOT, SBX_ENV_DIR). Every
# case runs with runc and with runsc. Prints "sbxlet: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

: "${CONTAINERD_SOCK:?run through tools/run-integration.sh}"
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh
SECRET=integration-secret-0123456789
H="Authorization: Bearer $SECRET"
SBX_PID=""
PORT=""
STARTS=0

OUTSIDE_NS=""
HOST_LISTENER_PIDS=()
cleanup() {
  [ -n "$SBX_PID" ] && kill -KILL "$SBX_PID" 2>/dev/null
  for p in "${HOST_LISTENER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "$OUTSIDE_NS" ] && outside_down
  # The sandboxes' netns a killed sbxlet could not remove (their veths go
  # with them); only the names this test's sbxlets use.
  local n
  for n in $(ip netns list | awk '{print $1}' | grep -E '^sbxit-(runc|runsc|ipx)-'); do ip netns del "$n"; done
  for br in sbxit-runc sbxit-runsc sbxit-ipx; do tools/net-cleanup.sh "$br"; done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

CTR() { ctr --address "$CONTAINERD_SOCK" -n "$NS" "$@"; }

# The network of each sbxlet of the test: its own bridge, subnet, conflist,
# IP leases (under its state dir) and netns names.
declare -A SUBNETS=([runc]=10.231.1.0/24 [runsc]=10.231.2.0/24 [ipx]=10.231.3.0/29)

# Starts sbxlet for runtime $1 with extra flags; sets SBX_PID and PORT.
# INSTANCE (default: the runtime) names the bridge, state dir and netns prefix.
start_sbxlet() {
  local rt=$1
  shift
  local inst=${INSTANCE:-$rt}
  STATE="$SBX_ENV_DIR/sbxlet-$inst"
  NS="sbxit-$inst"
  BRIDGE="sbxit-$inst"
  NETNS_PREFIX="sbxit-$inst-"
  IPAM_DIR="$STATE/cni/networks/sbxnet-$BRIDGE"
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
    --bridge-interface "$BRIDGE" --subnet-cidr "${SUBNETS[$inst]}" \
    --cni-conf-path "$STATE/cni/20-sbxnet.conflist" --netns-prefix "$NETNS_PREFIX" \
    --shutdown-grace 2 "$@" 2>"$LOG" &
  SBX_PID=$!
  PORT=$(listening_port "$LOG" "$SBX_PID" "state recovered") && return 0
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

no_leaks() { node_leaks "sbxit-*"; }  # everything the runtime's sandboxes owned is gone

# The "outside" host: a network namespace of the test's own with a
# documentation address (203.0.113.2), linked to the host (203.0.113.1), serving
# "hello-from-outside" on tcp 8081. Egress is tested against it only.
outside_up() {
  # What an earlier run of this test left when it was killed (its netns
  # names a process that is gone): removed first.
  local n
  for n in $(ip netns list | awk '{print $1}' | grep -E '^sbxit-out-[0-9]+$'); do
    kill -0 "${n#sbxit-out-}" 2>/dev/null || ip netns del "$n"
  done
  if ip link show sbxit-o0 >/dev/null 2>&1 && ! ip netns list | grep -q '^sbxit-out-'; then
    ip link del sbxit-o0
  fi
  # Never a range the host itself is on.
  if ip -4 -o addr | grep -q ' 203\.0\.113\.'; then
    echo "outside_up: the host already has an address in 203.0.113.0/24" >&2
    return 1
  fi
  OUTSIDE_NS="sbxit-out-$$"
  ip netns add "$OUTSIDE_NS" &&
    ip link add sbxit-o0 type veth peer name sbxit-o1 &&
    ip link set sbxit-o1 netns "$OUTSIDE_NS" &&
    ip addr add 203.0.113.1/24 dev sbxit-o0 && ip link set sbxit-o0 up &&
    ip -n "$OUTSIDE_NS" addr add 203.0.113.2/24 dev sbxit-o1 &&
    ip -n "$OUTSIDE_NS" link set sbxit-o1 up && ip -n "$OUTSIDE_NS" link set lo up || return 1
  ip netns exec "$OUTSIDE_NS" busybox nc -ll -p 8081 -e echo hello-from-outside &
  HOST_LISTENER_PIDS+=($!)
}
outside_down() {
  ip link del sbxit-o0 2>/dev/null
  ip netns del "$OUTSIDE_NS" 2>/dev/null
  OUTSIDE_NS=""
}

# A listener of the node's own on every host address (tcp $1): what
# sandboxes must never reach, and a port a sandbox cannot take.
host_listener() {
  busybox nc -ll -p "$1" -e echo node-secret &
  HOST_LISTENER_PIDS+=($!)
}

ip_of() { api GET "/v1/sandboxes/$1" | grep -o '"ip":"[0-9.]*"' | head -1 | cut -d'"' -f4; }
error_of() { api GET "/v1/sandboxes/$1" | grep -o '"error":"[^"]*"' | tail -1 | cut -d'"' -f4; }

# A one-connection-at-a-time HTTP server on 8080 (busybox nc) that answers
# "$1" to the first $2 requests and "$3" after: a server that turns bad.
json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
http_server_args() {
  # A persistent listener (nc -ll) running a handler per connection, so no
  # probe ever meets the gap between two one-shot servers (wide under gVisor).
  local handler script
  handler="n=\$(cat /tmp/n 2>/dev/null || echo 0); n=\$((n+1)); echo \$n > /tmp/n; while read -r l && [ \${#l} -gt 1 ]; do :; done; if [ \$n -le $2 ]; then s='$1'; else s='$3'; fi; printf \"HTTP/1.0 \$s\\r\\nContent-Length: 0\\r\\n\\r\\n\""
  script="printf '%s\\n' '#!/bin/sh' \"$(sed 's/["\\$]/\\&/g' <<<"$handler")\" > /tmp/h.sh && chmod +x /tmp/h.sh && while :; do nc -ll -p 8080 -e /tmp/h.sh; done"
  printf '["sh","-c","%s"]' "$(json_escape "$script")"
}

probe_json() {  # probe_json PROTOCOL PORT PATH SUCCESS FAILURE
  printf '"readinessProbe":{"protocol":"%s","port":%s,"path":"%s","initialDelaySeconds":1,"periodSeconds":1,"timeoutSeconds":1,"successThreshold":%s,"failureThreshold":%s}' "$@"
}

# Networking, ports, egress, isolation and readiness probes (issue 4).
network_suite() {
  local rt=$1 p=$2 hp hp_host
  hp=$((30000 + ${#rt} * 1000 + 80))  # runc 34080, runsc 35080
  hp_host=$((hp + 1))
  host_listener "$hp_host"

  # The seed's http-probe example (with a /healthz file, which the seed's
  # python http.server would otherwise answer 404): running once the probe
  # passed twice, answering on its IP and on 127.0.0.1:<hostPort>.
  local web
  web='{"name":"web","image":"python:3.12-alpine","args":["sh","-c","mkdir -p /tmp/www && echo sandbox-http > /tmp/www/index.html && echo ok > /tmp/www/healthz && cd /tmp/www && python -m http.server 8080"],"resource":{"cpu":"250m","memory":"64Mi","ephemeralStorage":"96Mi"}}'
  call POST /v1/sandboxes "{\"id\":\"$p-web\",\"egress\":true,\"ports\":[{\"hostPort\":$hp,\"containerPort\":8080}],$(probe_json http 8080 /healthz 2 3),\"containers\":[$web]}"
  check "$rt: web create 202 (got $CODE $BODY)" test "$CODE" = 202
  check "$rt: web running after its http probe" wait_phase "$p-web" running 40
  local ip
  ip=$(ip_of "$p-web")
  call GET "/v1/sandboxes/$p-web"
  check "$rt: sandbox reports ip, subnet, bridge, conflist" has "$BODY" '"ip":"10.231.' "\"bridgeName\":\"$BRIDGE\"" "\"subnetCIDR\":\"${SUBNETS[$rt]}\"" 20-sbxnet.conflist
  # 15 s each: gVisor's netstack and python under a loaded CI machine can
  # take seconds to answer; an answer that never comes still fails.
  local got
  got=$(curl -sS -m 15 "http://$ip:8080/" 2>&1)
  check "$rt: the sandbox IP answers from the host (got: $got)" test "$got" = sandbox-http
  got=$(curl -sS -m 15 "http://127.0.0.1:$hp/" 2>&1)
  check "$rt: the host port answers on 127.0.0.1 (got: $got)" test "$got" = sandbox-http

  # Host-port conflicts: another sandbox's, and the host's own listener.
  call POST /v1/sandboxes "{\"id\":\"$p-web2\",\"ports\":[{\"hostPort\":$hp,\"containerPort\":8080}],\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}"
  check "$rt: host port held by a sandbox → 400 naming it" test "$BODY" = "{\"error\":\"host port already in use: $hp/tcp (sandbox $p-web)\"}"
  call POST /v1/sandboxes "{\"id\":\"$p-web3\",\"ports\":[{\"hostPort\":$hp_host,\"containerPort\":8080}],\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}"
  check "$rt: host port held by the host → 400 saying so" test "$BODY" = "{\"error\":\"host port already in use: $hp_host/tcp (by a process on this host)\"}"

  # Egress on and off against the outside host; never the node, never
  # another sandbox.
  local gw=${SUBNETS[$rt]%.0/*}.1
  # Three tries for what should work (the first may race the sandbox's
  # start), one for what must not.
  local try='for t in %s; do echo x | nc -w 2 %s %s && break; sleep 1; done; echo %s-done'
  local cmd
  cmd="$(printf "$try" "1 2 3" 203.0.113.2 8081 outside); $(printf "$try" 1 "$ip" 8080 peer); $(printf "$try" 1 "$gw" "$hp_host" gateway); $(printf "$try" 1 203.0.113.1 "$hp_host" node); sleep 300"
  api POST /v1/sandboxes "{\"id\":\"$p-eon\",\"egress\":true,\"containers\":[$(container m alpine:3.20 10m 16Mi "[\"sh\",\"-c\",\"$cmd\"]")]}" >/dev/null
  api POST /v1/sandboxes "{\"id\":\"$p-eoff\",\"egress\":false,\"containers\":[$(container m alpine:3.20 10m 16Mi "[\"sh\",\"-c\",\"$cmd\"]")]}" >/dev/null
  check "$rt: egress:true finished its tries" wait_log "$p-eon" "[m] node-done" 60
  check "$rt: egress:false finished its tries" wait_log "$p-eoff" "[m] node-done" 60
  local on off
  on=$(api GET "/v1/sandboxes/$p-eon/logs")
  off=$(api GET "/v1/sandboxes/$p-eoff/logs")
  check "$rt: egress:true reaches the outside host" grep -q hello-from-outside <<<"$on"
  check "$rt: egress:false does not" lacks "$off" hello-from-outside
  check "$rt: no sandbox reaches another sandbox" lacks "$on$off" HTTP/
  check "$rt: no sandbox reaches the node" lacks "$on$off" node-secret
  check "$rt: the node still probes an egress:false sandbox" test "$(phase_of "$p-eoff")" = running
  check "$rt: rules are tagged per sandbox" bash -c "iptables-save | grep -q 'sandboxd:$p-eoff'"

  # Probes: a port nobody listens on; a server that turns to 500 after
  # being ready; a redirect counted as success; a tcp probe.
  api POST /v1/sandboxes "{\"id\":\"$p-pnone\",$(probe_json tcp 9999 / 1 2),\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}" >/dev/null
  # (200m, 64Mi: gVisor boots inside the container's quota and counts the
  # whole sandbox against its memory limit; with less, its
  # servers may not listen within the thresholds.)
  api POST /v1/sandboxes "{\"id\":\"$p-p500\",$(probe_json http 8080 / 1 3),\"containers\":[$(container m alpine:3.20 200m 64Mi "$(http_server_args "200 OK" 12 "500 Internal Server Error")")]}" >/dev/null
  api POST /v1/sandboxes "{\"id\":\"$p-p302\",$(probe_json http 8080 /x 1 8),\"containers\":[$(container m alpine:3.20 200m 64Mi "$(http_server_args "302 Found\\r\\nLocation: /elsewhere" 1000 "")")]}" >/dev/null
  api POST /v1/sandboxes "{\"id\":\"$p-ptcp\",$(probe_json tcp 7070 / 2 8),\"containers\":[$(container m alpine:3.20 200m 16Mi '["sh","-c","nc -ll -p 7070 -e true"]')]}" >/dev/null
  check "$rt: a server that turns to 500 is ready first" wait_phase "$p-p500" running 30
  check "$rt: probe on a closed port → error" wait_phase "$p-pnone" error 30
  check "$rt: ... saying which probe and how (got: $(error_of "$p-pnone"))" has "$(error_of "$p-pnone")" 'readiness probe failed 2 times: tcp [0-9.]*:9999: connection refused'
  check "$rt: 3xx counts as ready" wait_phase "$p-p302" running 30
  check "$rt: tcp probe ready" wait_phase "$p-ptcp" running 30
  check "$rt: ... then error" wait_phase "$p-p500" error 40
  check "$rt: ... with the status (got: $(error_of "$p-p500"))" has "$(error_of "$p-p500")" 'readiness probe failed 3 times: http GET http://[0-9.]*:8080/: status 500'
  for s in web eon eoff pnone p500 p302 ptcp; do api DELETE "/v1/sandboxes/$p-$s" >/dev/null; done
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
  check "$rt: loop stats" has "$BODY" '"max_stall_us":[0-9]'

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
  check "$rt: taskPID reported" has "$body" '"taskPID":[1-9]'
  check "$rt: image normalized" has "$body" docker.io/library/alpine:3.20
  check "$rt: runtime reported" has "$body" "\"runtime\":\"$rt\""

  network_suite "$rt" "$p"

  # Container ids that are prefixes of each other ("<sandbox>-<name>": px-a
  # and px-a-b), which runsc would find ambiguous in a shared root.
  call POST /v1/sandboxes "{\"id\":\"$p-px\",\"containers\":[$(container a alpine:3.20 100m 16Mi '["sleep","300"]')]}"
  call POST /v1/sandboxes "{\"id\":\"$p-px-a\",\"containers\":[$(container b alpine:3.20 100m 16Mi '["sleep","300"]')]}"
  check "$rt: prefix ids: first running" wait_phase "$p-px" running
  check "$rt: prefix ids: second running" wait_phase "$p-px-a" running
  call DELETE "/v1/sandboxes/$p-px"
  check "$rt: prefix ids: delete one (got $CODE $BODY)" test "$CODE" = 200
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
  check "$rt: exit code 137 shown" has "$body" '"exitCode":137'
  check "$rt: sandbox error names the container" has "$body" 'container hog exited with code 137'

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
  check "$rt: admission message" has "$body" 'insufficient cpu allocatable: requested=64000m used=[0-9]*m limit=[0-9]*m (90% of host)'
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
  check "$rt: statuses" has "$body" '"missing":\["ghost"\]' "\"id\":\"$p-pair\",\"phase\":\"running\""
  call GET "/v1/sandboxes?limit=2"
  body=$BODY
  check "$rt: list pages with next_cursor" has "$body" '"next_cursor"'
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
  wait "$SBX_PID" 2>/dev/null
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
  wait "$SBX_PID" 2>/dev/null
  SBX_PID=""
  check "$rt: restart after kill -9 during deletes" start_sbxlet "$rt"
  local undone=""
  # Up to 45 s: four teardowns after a restart, on a loaded machine.
  for _ in $(seq 1 450); do
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

  # Reconcile: a task killed from outside makes its sandbox error; a
  # sandbox whose state sbxlet lost (directory removed while it was down) is
  # released entirely: container, task, snapshot, netns, veth, IP, rules.
  api POST /v1/sandboxes "{\"id\":\"$p-victim\",\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}" >/dev/null
  api POST /v1/sandboxes "{\"id\":\"$p-lost\",\"egress\":true,\"ports\":[{\"hostPort\":$((36000 + ${#rt})),\"containerPort\":80}],\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}" >/dev/null
  wait_phase "$p-victim" running >/dev/null
  wait_phase "$p-lost" running >/dev/null
  local vpid
  vpid=$(api GET "/v1/sandboxes/$p-victim" | grep -o '"taskPID":[0-9]*' | cut -d: -f2)
  kill -KILL "$vpid"
  call POST /v1/reconcile
  check "$rt: reconcile answers ok" test "$BODY" = '{"ok":true}'
  check "$rt: a task killed from outside → error" wait_phase "$p-victim" error 20
  check "$rt: ... with its exit code (got: $(error_of "$p-victim"))" has "$(error_of "$p-victim")" 'container m exited with code 137'
  kill -KILL "$SBX_PID"
  wait "$SBX_PID" 2>/dev/null
  SBX_PID=""
  rm -rf "$STATE/sandboxes/$p-lost"
  check "$rt: restart with a lost state" start_sbxlet "$rt"
  call GET "/v1/sandboxes/$p-lost"
  check "$rt: the lost sandbox is unknown" test "$CODE" = 404
  call POST /v1/reconcile
  check "$rt: reconcile after the loss answers ok" test "$BODY" = '{"ok":true}'
  delete_all
  check "$rt: reconcile released the orphan; nothing is left" no_leaks
  stop_sbxlet
  tools/net-cleanup.sh "$BRIDGE"
  check "$rt: no firewall chain of ours after net-cleanup" bash -c "! iptables-save | grep -q 'SBX-[A-Z]*-$BRIDGE'"
}

# IP exhaustion in a /29 (6 usable, one the gateway's): the sixth sandbox
# is refused with SPEC's message.
ip_exhaustion_suite() {
  local p=sbxit-ipx
  INSTANCE=ipx check "ipx: sbxlet starts" start_sbxlet runc || return
  for i in 1 2 3 4 5; do
    call POST /v1/sandboxes "{\"id\":\"$p-$i\",\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}"
  done
  call POST /v1/sandboxes "{\"id\":\"$p-6\",\"containers\":[$(container m alpine:3.20 10m 16Mi '["sleep","300"]')]}"
  check "ipx: the sixth sandbox is refused" test "$BODY" = '{"error":"insufficient ip addresses in subnet 10.231.3.0/29: in_use=6 usable=6"}'
  check "ipx: the fifth is running" wait_phase "$p-5" running 30
  delete_all
  check "ipx: nothing is left" no_leaks
  stop_sbxlet
  tools/net-cleanup.sh "$BRIDGE"
}

# SBXIT_RUNTIMES="runsc" runs one runtime only (for debugging).
check "outside host up" outside_up
for rt in ${SBXIT_RUNTIMES:-runc runsc}; do run_suite "$rt"; done
ip_exhaustion_suite
echo "sbxlet: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
