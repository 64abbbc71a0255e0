#!/usr/bin/env bash
# Hollow nodes and the load generator, on the real daemons: sbxlet with
# runtime "sim" (no containerd, network or firewall, so no root needed) and
# sandboxd-o over ten of them, driven by bin/loadgen.
#   - one hollow node: loadgen's mixed load (create, get, list, statuses,
#     delete, waiting for running) with zero errors, then cleanup leaves no
#     sandbox, state directory or booking; validation and admission answer
#     as on a real node; injected failures give phase error; a restart keeps
#     running sandboxes; the loop endpoint answers;
#   - ten hollow nodes under sandboxd-o: loadgen creates 500 sandboxes with
#     a port each through the control plane, every one Running, no (node,
#     port) pair twice, each node holding exactly what the control plane
#     says; then loadgen deletes them all and every node is empty.
# Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh

SECRET=hollow-test-secret-0123456789
H="Authorization: Bearer $SECRET"
NODES=10
SANDBOXES=500
for b in bin/sbxlet bin/sandboxd-o bin/loadgen; do
  [ -x "$b" ] || { echo "hollow_test: $b is not built" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "hollow_test: jq is missing (tools/deps.sh)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/sbx-hollow-test.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

start_node() {  # start_node DIR [FLAGS...]: starts a hollow sbxlet; sets NODE_PID, NODE_PORT
  local dir=$1
  shift
  mkdir -p "$dir"
  bin/sbxlet --runtime sim --http-addr 127.0.0.1:0 --state-dir "$dir" --shared-secret "$SECRET" \
    --cni-conf-path "$dir/none.conflist" --sim-cpu 16 --sim-memory 64Gi "$@" 2>"$dir/log" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  NODE_PORT=$(listening_port "$dir/log" "$NODE_PID" "state recovered") || {
    echo "hollow_test: sbxlet in $dir did not start" >&2
    tail -5 "$dir/log" >&2
    exit 1
  }
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
api() {  # api METHOD PORT PATH [BODY]
  curl -s -X "$1" -H "$H" -H 'Content-Type: application/json' ${4:+-d "$4"} "http://127.0.0.1:$2$3"
}
# sandbox_has PORT ID PATTERN...: GET the sandbox now and match.
sandbox_has() {
  local port=$1 id=$2
  shift 2
  has "$(api GET "$port" "/v1/sandboxes/$id")" "$@"
}
count_sandboxes() { api GET "$1" /v1/node/status | jq .resources.sandboxes; }

# ---- one hollow node ---------------------------------------------------------------------
start_node "$WORK/n0" --sim-start-latency 20ms --sim-start-jitter 30ms
P=$NODE_PORT
bin/loadgen --api sbxlet --target "127.0.0.1:$P" --secret "$SECRET" \
  --mix create=2,get=4,list=1,statuses=1,delete=1 --concurrency 16 --duration 3s --preload 50 \
  --wait-running --cleanup --id-prefix mix- --json >"$WORK/mixed.out" 2>&1
rc=$?
check "loadgen's mixed load on a hollow node: exit 0 (no errors)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -30 "$WORK/mixed.out" >&2
json=$(grep '^{' "$WORK/mixed.out" | tail -1)
check "loadgen printed a table and a JSON report" has "$(cat "$WORK/mixed.out")" 'p99' '^{'
for op in create get list statuses delete; do
  n=$(jq -r --arg op "$op" '.ops[$op].ok // 0' <<<"$json" 2>/dev/null)
  check "loadgen ran $op operations (${n:-0} ok)" test "${n:-0}" -gt 0
done
check "after cleanup the node holds no sandbox" test "$(count_sandboxes "$P")" = 0
check "after cleanup no state directory is left" test -z "$(ls -A "$WORK/n0/sandboxes")"
status=$(api GET "$P" /v1/node/status)
check "after cleanup nothing is booked (cpu, addresses)" \
  has "$status" '"used_cpu_milli":0' '"ip_in_use":1,'

# The real API's validation and admission on a hollow node.
r=$(api POST "$P" /v1/sandboxes '{"id":"bad/id","containers":[{"name":"a","image":"x","resource":{"cpu":"1","memory":"1Mi"}}]}')
check "validation as on a real node (bad id)" has "$r" 'invalid sandbox id'
r=$(api POST "$P" /v1/sandboxes '{"id":"huge","containers":[{"name":"a","image":"x","resource":{"cpu":"100","memory":"1Mi"}}]}')
check "admission as on a real node (cpu)" has "$r" 'insufficient cpu allocatable: requested=100000m'
r=$(api POST "$P" /v1/sandboxes '{"id":"keep","ports":[{"hostPort":31000,"containerPort":80}],"containers":[{"name":"a","image":"x","resource":{"cpu":"100m","memory":"1Mi"}}]}')
check "create answers 202 creating with an address" has "$r" '"phase":"creating"' '"ip":"10.89.0.2"' '"runtime":"sim"'
check "the hollow sandbox runs" wait_for 5 sandbox_has "$P" keep '"phase":"running"'
r=$(api POST "$P" /v1/sandboxes '{"id":"clash","ports":[{"hostPort":31000,"containerPort":80}],"containers":[{"name":"a","image":"x","resource":{"cpu":"100m","memory":"1Mi"}}]}')
check "host ports are booked (conflict names the holder)" has "$r" 'host port already in use: 31000/tcp (sandbox keep)'
l=$(api GET "$P" /v1/node/loop)
check "the loop endpoint answers" has "$l" '"max_stall_us":' '"turns":'

# A restart keeps the running sandbox and its bookings.
stop_pid "$NODE_PID"
start_node "$WORK/n0" --sim-start-latency 20ms
P=$NODE_PORT
check "after a restart the sandbox is still running" has "$(api GET "$P" /v1/sandboxes/keep)" '"phase":"running"' '"ip":"10.89.0.2"'
r=$(api POST "$P" /v1/sandboxes '{"id":"clash","ports":[{"hostPort":31000,"containerPort":80}],"containers":[{"name":"a","image":"x","resource":{"cpu":"100m","memory":"1Mi"}}]}')
check "after a restart its host port is still booked" has "$r" 'host port already in use: 31000/tcp (sandbox keep)'
check "delete answers deleted" has "$(api DELETE "$P" /v1/sandboxes/keep)" '"phase":"deleted"'
check "after the delete its state directory is gone" test ! -e "$WORK/n0/sandboxes/keep"
stop_pid "$NODE_PID"

# Injected failures.
start_node "$WORK/nf" --sim-start-latency 10ms --sim-failure-percent 100
r=$(api POST "$NODE_PORT" /v1/sandboxes '{"id":"doomed","containers":[{"name":"a","image":"x","resource":{"cpu":"100m","memory":"1Mi"}}]}')
check "a create on a failing hollow node is accepted" has "$r" '"phase":"creating"'
check "then fails with the injected message" wait_for 5 sandbox_has "$NODE_PORT" doomed \
  '"phase":"error"' 'sim: injected start failure (sim_failure_percent=100)'
stop_pid "$NODE_PID"

# The connection cap: idle keep-alive connections never lock others out
# (the idle one nearest its timeout makes room), and the cap holds.
start_node "$WORK/ncap" --http-max-connections 100
idle_fds=()
for _ in $(seq 1 300); do
  if exec {fd}<>"/dev/tcp/127.0.0.1/$NODE_PORT"; then
    printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&"$fd"
    idle_fds+=("$fd")
  fi
done
served=0
for _ in $(seq 1 20); do
  [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NODE_PORT/healthz")" = 200 ] && served=$((served + 1))
done
check "300 idle connections at a cap of 100: 20 of 20 new clients served (got $served)" test "$served" = 20
open_fds=$(ls "/proc/$NODE_PID/fd" | wc -l)
check "... and the cap holds ($open_fds descriptors open)" test "$open_fds" -lt 150
for fd in "${idle_fds[@]}"; do exec {fd}>&-; done
stop_pid "$NODE_PID"

# ---- ten hollow nodes under sandboxd-o ---------------------------------------------------
nodes="["
NODE_PORTS=()
for i in $(seq 1 "$NODES"); do
  start_node "$WORK/h$i" --sim-start-latency 50ms --sim-start-jitter 50ms --worker-threads 2
  NODE_PORTS+=("$NODE_PORT")
  nodes+="$([ "$i" -gt 1 ] && echo ,){\"id\":\"h$i\",\"ip\":\"127.0.0.1\",\"port\":$NODE_PORT}"
done
nodes+="]"
mkdir -p "$WORK/orch"
bin/sandboxd-o --http-addr 127.0.0.1:0 --shared-secret "$SECRET" --sqlite-path "$WORK/orch/o.db" \
  --heartbeat-interval 200ms --create-rps 100000 --create-burst 100000 --host-port-min 20000 \
  --host-port-max 20999 --nodes "$nodes" 2>"$WORK/orch/log" &
ORCH_PID=$!
PIDS+=("$ORCH_PID")
O=$(listening_port "$WORK/orch/log" "$ORCH_PID") || { echo "hollow_test: sandboxd-o did not start" >&2; exit 1; }
all_ready() { [ "$(api GET "$O" /api/v1/nodes | jq '[.items[] | select(.state == "Ready")] | length')" = "$NODES" ]; }
check "all $NODES hollow nodes Ready" wait_for 20 all_ready
bin/loadgen --api orch --target "127.0.0.1:$O" --secret "$SECRET" --mix create=1 --count "$SANDBOXES" \
  --concurrency 64 --wait-running --ports 1 --id-prefix ho- --json >"$WORK/orch.out" 2>&1
rc=$?
check "loadgen: $SANDBOXES creates through sandboxd-o, all Running, no errors" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -30 "$WORK/orch.out" >&2
items=$(api GET "$O" "/api/v1/sandboxes?limit=1000" | jq -c '.items[]')
check "the control plane lists $SANDBOXES sandboxes, all Running" test \
  "$(jq -r 'select(.status.phase == "Running") | .id' <<<"$items" | wc -l)" = "$SANDBOXES"
dups=$(jq -r '.status.node_name as $n | .status.assigned_ports[]? | "\($n) \(.host_port)/\(.protocol)"' <<<"$items" | sort | uniq -d | wc -l)
check "no (node, host port) pair booked twice" test "$dups" = 0
spread=$(jq -r '.status.node_name' <<<"$items" | sort -u | wc -l)
check "placement spread over all $NODES nodes ($spread)" test "$spread" = "$NODES"
mismatch=0
for i in $(seq 1 "$NODES"); do
  want=$(jq -r --arg n "h$i" 'select(.status.node_name == $n) | .id' <<<"$items" | wc -l)
  have=$(count_sandboxes "${NODE_PORTS[$((i - 1))]}")
  [ "$want" = "$have" ] || { mismatch=$((mismatch + 1)); echo "node h$i: control plane $want, node $have" >&2; }
done
check "every node holds exactly the control plane's sandboxes" test "$mismatch" = 0
l=$(api GET "$O" /api/v1/loop)
check "sandboxd-o's loop endpoint answers" has "$l" '"max_stall_us":' '"turns":'

# loadgen deletes what it did not create: no. Delete through the API, then
# every node is empty.
jq -r '.id' <<<"$items" | xargs -P 8 -I{} curl -s -o /dev/null -X DELETE -H "$H" "http://127.0.0.1:$O/api/v1/sandboxes/{}"
empty() {
  local p
  for p in "${NODE_PORTS[@]}"; do [ "$(count_sandboxes "$p")" = 0 ] || return 1; done
  [ "$(api GET "$O" /api/v1/sandboxes | jq '.items | length')" = 0 ]
}
check "after deleting everything every node and the control plane are empty" wait_for 20 empty

echo "hollow: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
