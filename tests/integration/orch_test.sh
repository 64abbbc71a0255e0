#!/usr/bin/env bash
# Integration: the real bin/sandboxd-o with real sbxlets (runc) on the
# private containerd and registry of tests/env (run through
# tools/run-integration.sh). Two nodes that schedule, a third with the wrong
# secret; each sbxlet has its own state dir, containerd namespace, bridge,
# subnet and netns prefix. Prints "orch: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

: "${CONTAINERD_SOCK:?run through tools/run-integration.sh}"
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh
ORCH_SECRET=orch-client-secret-0123456789
NODE_SECRET=orch-node-secret-0123456789
OH="Authorization: Bearer $ORCH_SECRET"
WORK="$SBX_ENV_DIR/orch"
mkdir -p "$WORK"

declare -A NODE_PID NODE_PORT NODE_SUBNET NODE_EXT
NODE_SUBNET=([a]=10.231.6.0/24 [b]=10.231.7.0/24 [c]=10.231.8.0/24)
NODE_EXT=([a]=198.51.100.11 [b]=198.51.100.12 [c]=198.51.100.13)
ORCH_PID=""
ORCH_PORT=""
ORCH_STARTS=0

cleanup() {
  [ -n "$ORCH_PID" ] && kill -KILL "$ORCH_PID" 2>/dev/null
  local n
  for n in "${!NODE_PID[@]}"; do
    [ -n "${NODE_PID[$n]}" ] && kill -KILL "${NODE_PID[$n]}" 2>/dev/null
  done
  for n in $(ip netns list | awk '{print $1}' | grep -E '^sbxit-o[abc]-'); do ip netns del "$n"; done
  for n in a b c; do tools/net-cleanup.sh "sbxit-o$n"; done
}
trap cleanup EXIT
trap 'exit 143' TERM INT


# Starts (or restarts) the sbxlet of node $1 with secret $2.
start_node() {
  local n=$1 secret=$2
  local state="$WORK/node-$n" log
  mkdir -p "$state"
  log="$state/sbxlet.$RANDOM.log"
  bin/sbxlet --http-addr "127.0.0.1:${NODE_PORT[$n]:-0}" --state-dir "$state" --containerd-address "$CONTAINERD_SOCK" \
    --containerd-namespace "sbxit-orch-$n" --runtime runc --runtime-root "$RUNC_ROOT/orch-$n" \
    --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$secret" \
    --bridge-interface "sbxit-o$n" --subnet-cidr "${NODE_SUBNET[$n]}" \
    --cni-conf-path "$state/cni/20-sbxnet.conflist" --netns-prefix "sbxit-o$n-" \
    --external-address "${NODE_EXT[$n]}" \
    --shutdown-grace 2 2>"$log" &
  NODE_PID[$n]=$!
  local port
  if port=$(listening_port "$log" "${NODE_PID[$n]}" "state recovered"); then
    NODE_PORT[$n]=$port
    return 0
  fi
  echo "sbxlet $n did not start:" >&2
  tail -5 "$log" >&2
  return 1
}

# Starts sandboxd-o with extra flags.
start_orch() {
  ORCH_STARTS=$((ORCH_STARTS + 1))
  local log="$WORK/orch.$ORCH_STARTS.log"
  bin/sandboxd-o --http-addr "127.0.0.1:${ORCH_PORT:-0}" --shared-secret "$ORCH_SECRET" \
    --node-shared-secret "$NODE_SECRET" --sqlite-path "$WORK/db/orchestrator.db" \
    --heartbeat-interval 500ms --probe-timeout 1s --status-sync-interval 100ms \
    --host-port-min 40000 --host-port-max 40999 --shutdown-grace 2 "$@" 2>"$log" &
  ORCH_PID=$!
  local port
  if port=$(listening_port "$log" "$ORCH_PID"); then
    ORCH_PORT=$port
    return 0
  fi
  echo "sandboxd-o did not start:" >&2
  tail -5 "$log" >&2
  return 1
}

# call METHOD PATH [BODY]: sets BODY and CODE.
call() {
  local out
  out=$(curl -s -w '\n%{http_code}' -X "$1" -H "$OH" "http://127.0.0.1:$ORCH_PORT$2" ${3:+-d "$3"})
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
api() {
  call "$@"
  printf '%s' "$BODY"
}
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
phase_of() { api GET "/api/v1/sandboxes/$1" | field phase; }
node_state() { api GET "/api/v1/nodes/$1" | field state; }

is_phase() { [ "$(phase_of "$1")" = "$2" ]; }
is_state() { [ "$(node_state "$1")" = "$2" ]; }
is_gone() { call GET "/api/v1/sandboxes/$1"; [ "$CODE" = 404 ]; }

sandbox_json() {  # sandbox_json ID CPU [EXTRA_SPEC]
  printf '{"id":"%s","spec":{%s"ports":[{"container_port":8080,"protocol":"tcp"}],"containers":[{"name":"m","image":"alpine:3.20","args":["sleep","300"],"resource":{"cpu":"%s","memory":"16Mi"}}]}}' "$1" "${3:-}" "$2"
}

# Every sandbox the node's sbxlet has (ids, sorted), through the proxy.
node_ids() {
  local cursor="" out ids=""
  while :; do
    out=$(api GET "/api/v1/nodes/$1/sandboxes?limit=200${cursor:+&cursor=$cursor}")
    ids+=$(grep -o '"id":"[^"]*","phase"' <<<"$out" | cut -d'"' -f4)$'\n'
    cursor=$(field next_cursor <<<"$out")
    [ -n "$cursor" ] || break
  done
  grep -v '^$' <<<"$ids" | sort
}
# The orch's sandboxes placed on node $1 (ids, sorted).
orch_ids_on() {
  local out
  out=$(api GET "/api/v1/sandboxes")
  # One sandbox object per line: split at each top-level "id" of an item.
  sed 's/},{"id":/}\n{"id":/g' <<<"$out" | grep "\"node_name\":\"$1\"" | grep -o '"id":"[^"]*"' |
    cut -d'"' -f4 | sort
}

check "sbxlet a starts" start_node a "$NODE_SECRET"
check "sbxlet b starts" start_node b "$NODE_SECRET"
check "sbxlet c (another secret) starts" start_node c "not-the-node-secret"
check "sandboxd-o starts" start_orch

# ---- nodes ----
call GET /api/v1/nodes
check "401 without the secret" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ORCH_PORT/api/v1/nodes")" = 401
check "healthz is open" test "$(curl -s "http://127.0.0.1:$ORCH_PORT/healthz")" = '{"ok":true}'
for n in a b c; do
  call POST /api/v1/nodes "{\"id\":\"$n\",\"spec\":{\"ip\":\"127.0.0.1\",\"port\":${NODE_PORT[$n]}}}"
  check "register $n: 200 (got $CODE $BODY)" test "$CODE" = 200
done
check "a registered node starts Unknown, source api" has "$BODY" '"state":"Unknown"' '"source":"api"' '"success_streak":0' "\"sbxlet_base_url\":\"http://127.0.0.1:${NODE_PORT[c]}\""
check "node a becomes Ready" wait_for 10 is_state a Ready
check "node b becomes Ready" wait_for 10 is_state b Ready
check "node c (wrong secret) becomes NotReady" wait_for 10 is_state c NotReady
call GET /api/v1/nodes/c
check "... and says why (got $BODY)" has "$BODY" '"last_error":"status: HTTP 401'
call GET /api/v1/nodes/a
check "node object: resources, external (got $BODY)" has "$BODY" '"name":"a"' '"available_cpu_milli":[0-9]' '"external":"198.51.100.1' '"last_heartbeat":"20'
call POST /api/v1/nodes/a/heartbeat
check "heartbeat now: ok (got $BODY)" has "$BODY" '"heartbeat":"ok"' '"heartbeat_error":""' '"status_error":""' '"capacity_cpu_milli":'
call POST /api/v1/nodes '{"id":"evil","spec":{"ip":"169.254.169.254","port":80}}'
check "a link-local node ip is refused (got $BODY)" has "$CODE $BODY" '^400 ' 'link-local'
call POST /api/v1/nodes '{"id":"evil","spec":{"ip":"0.0.0.0","port":80}}'
check "an unspecified node ip is refused" test "$CODE" = 400
call POST /api/v1/nodes '{"id":"../x","spec":{"ip":"127.0.0.1","port":80}}'
check "a bad node id is refused" test "$CODE" = 400
call GET /api/v1/nodes/nope
check "unknown node: 404" test "$CODE" = 404
call DELETE /api/v1/nodes/c
check "delete node c: {\"deleted\":\"c\"} (got $BODY)" test "$BODY" = '{"deleted":"c"}'

# ---- proxy ----
call GET /api/v1/nodes/nope/sandboxes
check "proxy to an unknown node: 404" test "$CODE" = 404
call POST /api/v1/nodes '{"id":"dead","spec":{"ip":"127.0.0.1","port":1}}'
call GET /api/v1/nodes/dead/sandboxes
check "proxy to an unreachable node: 502 (got $CODE $BODY)" test "$CODE" = 502
call DELETE /api/v1/nodes/dead
call POST /api/v1/nodes/a/sandboxes "{\"id\":\"direct-1\",\"ports\":[{\"host_port\":40990,\"container_port\":8080}],\"containers\":[{\"name\":\"m\",\"image\":\"alpine:3.20\",\"args\":[\"sleep\",\"300\"],\"resource\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"}}]}"
check "direct create through the proxy (snake_case): 202 with external (got $CODE $BODY)" has "$CODE $BODY" '^202 ' '"phase":"creating"' '"external":"198.51.100.1'
call POST /api/v1/nodes/a/sandboxes '{"id":"direct-2","containers":[{"name":"m","image":"alpine:3.20","workDir":"/","resource":{"cpu":"10m","memory":"16Mi"}}]}'
check "direct create (camelCase): 202" test "$CODE" = 202
call GET /api/v1/nodes/a/sandboxes/direct-1
check "proxy GET: the node's sandbox with external" has "$BODY" '"sandbox":{' '"id":"direct-1"' '"external":"198.51.100.1'
call GET "/api/v1/nodes/a/sandboxes/..%2Fx"
check "proxy refuses a bad id: 400" test "$CODE" = 400
call GET /api/v1/nodes/a/sandboxes/direct-1/logs
check "proxy logs: 200" has "$CODE $BODY" '^200 ' '"sandbox_id":"direct-1"'
call GET /api/v1/nodes/a/sandboxes/direct-1/containers/m/logs
check "proxy container logs: 200" test "$CODE" = 200
call POST /api/v1/nodes/a/reconcile
check "proxy reconcile: ok" has "$BODY" '"ok":true'
call DELETE /api/v1/nodes/a/sandboxes/direct-1
check "proxy delete" has "$BODY" '"phase":"deleted"'
call DELETE /api/v1/nodes/a/sandboxes/direct-2

# ---- validation and rate limit ----
call POST /api/v1/sandboxes '{"id":"v1","spec":{"containers":[{"name":"m","image":"alpine:3.20","resource":{"cpu":"lots","memory":"16Mi"}}]}}'
check "invalid cpu: 400 with sbxlet's message (got $BODY)" has "$CODE $BODY" '^400 ' 'cpu'
call POST /api/v1/sandboxes '{"id":"v2"}'
check "missing spec: 400" has "$CODE $BODY" '^400 ' 'spec'
call POST /api/v1/sandboxes '{"id":"v3","spec":{"ports":[{"host_port":12345,"container_port":80}],"containers":[{"name":"m","image":"alpine:3.20","resource":{"cpu":"10m","memory":"16Mi"}}]}}'
check "a client host_port: 400" has "$CODE $BODY" '^400 ' 'host_port'
args=()
for _ in $(seq 1 60); do args+=(-o /dev/null "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes"); done
codes=$(curl -s -w '%{http_code}\n' -X POST -H "$OH" -d '{}' "${args[@]}" | sort | uniq -c)
check "60 creates at once: 429 past the burst (got $codes)" has "$codes" ' 429$' ' 400$'
for _ in $(seq 1 50); do
  call POST /api/v1/sandboxes '{}'
  [ "$CODE" = 429 ] && break
done
check "... with the message" test "$BODY" = '{"error":"rate limit exceeded for sandbox create"}'

# Restart with room for the load below (the store keeps the nodes).
kill -TERM "$ORCH_PID"
wait "$ORCH_PID"
check "sandboxd-o exits 0 on SIGTERM" test $? -eq 0
check "sandboxd-o restarts" start_orch --create-rps 1000 --create-burst 1000
call GET /api/v1/nodes
check "nodes survive a restart" has "$BODY" '"name":"a"' '"name":"b"'
check "node a Ready again" wait_for 10 is_state a Ready
check "node b Ready again" wait_for 10 is_state b Ready

# ---- sandboxes: placement, shapes ----
call POST /api/v1/sandboxes "$(sandbox_json s1 100m '"egress":true,"ttl_seconds":3600,')"
check "create: 202 Pending with expire_at (got $CODE $BODY)" has "$CODE $BODY" '^202 ' '"sandbox":{"id":"s1","spec":{' '"status":{"phase":"Pending"' '"expire_at":"20' '"created_at":"20' '"ttl_seconds":3600' '"container_port":8080'
check "s1 Running" wait_for 30 is_phase s1 Running
call GET /api/v1/sandboxes/s1
check "status: node, external, ip, assigned port (got $BODY)" has "$BODY" '"node_name":"[ab]"' '"external":"198.51.100.1' '"ip":"10.231.[67]\.' '"assigned_ports":\[{"host_port":40000,"container_port":8080,"protocol":"tcp"}\]'
s1_node=$(field node_name <<<"$BODY")
call POST /api/v1/sandboxes "$(sandbox_json s2 100m)"
check "s2 Running" wait_for 30 is_phase s2 Running
s2_node=$(api GET /api/v1/sandboxes/s2 | field node_name)
check "placement spreads: s1 on $s1_node, s2 on $s2_node" test "$s1_node" != "$s2_node"
call POST /api/v1/sandboxes "$(sandbox_json s1 100m)"
check "a duplicate id: 409" test "$CODE" = 409
call GET /api/v1/sandboxes
check "list" has "$BODY" '"items":\[' '"id":"s1"' '"id":"s2"'

# ---- TTL ----
call POST /api/v1/sandboxes "$(sandbox_json ttl1 10m '"ttl_seconds":4,')"
check "ttl sandbox Running" wait_for 30 is_phase ttl1 Running
ttl_node=$(api GET /api/v1/sandboxes/ttl1 | field node_name)
check "ttl: gone after expiry" wait_for 15 is_gone ttl1
check "ttl: deleted on its node too" lacks "$(node_ids "$ttl_node")" '^ttl1$'

# ---- Pending until capacity frees ----
# 90% of the host's CPUs per node: two big ones take both nodes, a third
# waits for one of them.
avail_a=$(api GET /api/v1/nodes/a | grep -o '"available_cpu_milli":[0-9]*' | cut -d: -f2)
avail_b=$(api GET /api/v1/nodes/b | grep -o '"available_cpu_milli":[0-9]*' | cut -d: -f2)
big=$(( (avail_a < avail_b ? avail_a : avail_b) - 300 ))
call POST /api/v1/sandboxes "$(sandbox_json big1 "${big}m")"
call POST /api/v1/sandboxes "$(sandbox_json big2 "${big}m")"
check "big1 Running" wait_for 30 is_phase big1 Running
check "big2 Running" wait_for 30 is_phase big2 Running
call POST /api/v1/sandboxes "$(sandbox_json big3 "${big}m")"
sleep 1
call GET /api/v1/sandboxes/big3
check "big3 stays Pending, saying why (got $BODY)" has "$BODY" '"phase":"Pending"' 'no node fits' 'insufficient cpu'
call DELETE /api/v1/sandboxes/big1
check "delete big1: {\"deleted\":\"big1\"}" test "$BODY" = '{"deleted":"big1"}'
check "big3 placed once big1 is gone" wait_for 30 is_phase big3 Running
call DELETE /api/v1/sandboxes/big2
call DELETE /api/v1/sandboxes/big3

# ---- 100 concurrent creates: host ports never double-booked ----
for i in $(seq 1 100); do
  curl -s -o /dev/null -X POST -H "$OH" -d "$(sandbox_json "c$i" 5m)" "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes" &
done
wait_all_curls() { while pgrep -P $$ curl >/dev/null; do sleep 0.1; done; }
wait_all_curls
all_running() {
  local body
  body=$(api GET /api/v1/sandboxes)
  [ "$(grep -o '"phase":"Running"' <<<"$body" | wc -l)" -ge 102 ]
}
check "100 concurrent creates all Running" wait_for 120 all_running
body=$(api GET /api/v1/sandboxes)
pairs=$(sed 's/},{"id":/}\n{"id":/g' <<<"$body" | grep -o '"node_name":"[ab]".*"host_port":[0-9]*' |
  sed 's/"node_name":"\([ab]\)".*"host_port":\([0-9]*\)/\1:\2/')
check "102 (node, host port) pairs" test "$(wc -l <<<"$pairs")" -eq 102
check "... all distinct" test "$(sort <<<"$pairs" | uniq -d | wc -l)" -eq 0
for n in a b; do
  check "node $n has exactly the sandboxes the control plane put there" test "$(node_ids "$n")" = "$(orch_ids_on "$n")"
done

# ---- kill -9 of sandboxd-o while it schedules ----
for i in $(seq 1 20); do
  curl -s -o /dev/null -X POST -H "$OH" -d "$(sandbox_json "k$i" 5m)" "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes" &
done
sleep 0.3
kill -KILL "$ORCH_PID"
wait_all_curls
check "sandboxd-o restarts after kill -9" start_orch --create-rps 1000 --create-burst 1000
settled() {
  local body
  body=$(api GET /api/v1/sandboxes)
  ! grep -q '"phase":"\(Pending\|Scheduled\|Deleting\)"' <<<"$body"
}
check "after the restart every sandbox settles" wait_for 90 settled
body=$(api GET /api/v1/sandboxes)
settled || {
  echo "not settled:" >&2
  sed 's/},{"id":/}\n{"id":/g' <<<"$body" | grep -v '"phase":"Running"' | cut -c1-400 | head -5 >&2
}
check "... none failed (got $(grep -o '"message":"[^"]*"' <<<"$body" | sort | uniq -c | head -3))" lacks "$body" '"phase":"Failed"'
pairs=$(sed 's/},{"id":/}\n{"id":/g' <<<"$body" | grep -o '"node_name":"[ab]".*"host_port":[0-9]*' |
  sed 's/"node_name":"\([ab]\)".*"host_port":\([0-9]*\)/\1:\2/')
check "... no host port double-booked" test "$(sort <<<"$pairs" | uniq -d | wc -l)" -eq 0
for n in a b; do
  check "... node $n holds exactly the control plane's sandboxes" test "$(node_ids "$n")" = "$(orch_ids_on "$n")"
done

# ---- a node that dies: NotReady, its sandboxes kept and marked ----
kill -KILL "${NODE_PID[b]}"
check "killed sbxlet: node b NotReady" wait_for 15 is_state b NotReady
b_sbx=$(api GET /api/v1/sandboxes | sed 's/},{"id":/}\n{"id":/g' | grep '"node_name":"b"' |
  grep '"phase":"Running"' | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
call GET "/api/v1/sandboxes/$b_sbx"
check "its sandbox is kept, marked (got $BODY)" has "$BODY" '"phase":"Running"' '"message":"node b is NotReady'
check "sbxlet b restarts" start_node b "$NODE_SECRET"
check "node b Ready again" wait_for 15 is_state b Ready
call GET "/api/v1/sandboxes/$b_sbx"
check "... its sandbox Running, the mark gone (got $BODY)" lacks "$BODY" NotReady

# ---- deleting a node deletes its sandboxes on it first ----
call DELETE /api/v1/nodes/b
check "delete node b (its sandboxes first): 200" test "$BODY" = '{"deleted":"b"}'
check "... node b holds no sandbox" lacks "$(curl -s -H "Authorization: Bearer $NODE_SECRET" "http://127.0.0.1:${NODE_PORT[b]}/v1/sandboxes")" '"phase"'
check "... and the control plane none on it" test -z "$(orch_ids_on b)"

# ---- delete everything; nothing left on the node ----
for id in $(api GET /api/v1/sandboxes | grep -o '"id":"[^"]*","spec"' | cut -d'"' -f4); do
  curl -s -o /dev/null -X DELETE -H "$OH" "http://127.0.0.1:$ORCH_PORT/api/v1/sandboxes/$id" &
done
wait_all_curls
check "every sandbox deleted" test "$(api GET /api/v1/sandboxes)" = '{"items":[]}'
check "node a holds none" test -z "$(node_ids a)"

kill -TERM "$ORCH_PID"
wait "$ORCH_PID"
ORCH_PID=""
for n in a b c; do
  kill -TERM "${NODE_PID[$n]}" 2>/dev/null
  wait "${NODE_PID[$n]}" 2>/dev/null
  NODE_PID[$n]=""
done
check "no netns left" test -z "$(ip netns list | grep -E '^sbxit-o[abc]-')"
echo "orch: $passed passed, $failed failed (${SECONDS}s)"
[ "$failed" -eq 0 ]
