#!/usr/bin/env bash
# Faults on the real system: a real sbxlet (runc) on the private containerd
# of tests/env, two hollow sbxlets, sandboxd-o over the three, and bin/loadgen
# driving creates and deletes while processes are killed. Run through
# tools/run-integration.sh (`make chaos`; `make test` runs a shorter one).
#   1. kill -9 sbxlet at a random moment during 50 concurrent creates and
#      deletes, restart it (CHAOS_ROUNDS rounds, 10 by default);
#   2. kill -9 containerd during creates, restart it;
#   3. kill -9 sandboxd-o while it schedules onto the three nodes, restart it;
#   4. SIGSTOP the real node for twice the heartbeat timeout, then SIGCONT.
# After each: every sandbox in a truthful phase (a running one has running
# tasks in containerd; nothing stays creating; containerd holds nothing that
# no sandbox owns); no double-booked host port; then, once everything is
# deleted, nothing is left of any sandbox (container, task, snapshot, lease,
# netns, veth, IP lease, iptables rule, mount, cgroup, state file, runtime
# root). And the daemons that were not killed answered throughout.
# Ends with "chaos: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
: "${CONTAINERD_SOCK:?run through tools/run-integration.sh}"
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh

ROUNDS=${CHAOS_ROUNDS:-10}
PARTS=${CHAOS_PARTS:-1 2 3 4}  # which of the four faults
part() { grep -qw "$1" <<<"$PARTS"; }
CONC=${CHAOS_CONCURRENCY:-50}
SECRET=chaos-secret-0123456789
H="Authorization: Bearer $SECRET"
NS=sbxit-chaos
BRIDGE=sbxit-chaos
SUBNET=10.231.11.0/24
NETNS_PREFIX=sbxit-chaos-
WORK="$SBX_ENV_DIR/chaos"
STATE="$WORK/node"
RTROOT="$RUNC_ROOT/chaos"
IPAM_DIR="$STATE/cni/networks/sbxnet-$BRIDGE"
mkdir -p "$STATE" "$WORK/h1" "$WORK/h2" "$WORK/db"
for b in bin/sbxlet bin/sandboxd-o bin/loadgen; do
  [ -x "$b" ] || { echo "chaos: $b is not built" >&2; exit 2; }
done

NODE_PID="" NODE_PORT=0 ORCH_PID="" ORCH_PORT=0 H1_PID="" H2_PID=""
H1_PORT=0 H2_PORT=0
BG_PIDS=()
cleanup() {
  local p
  for p in "$NODE_PID" "$ORCH_PID" "$H1_PID" "$H2_PID" "${BG_PIDS[@]}"; do
    [ -n "$p" ] && kill -CONT "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  # Only those: a containerd this script restarted is a child too, and
  # tests/env/down.sh stops it.
  for p in "$NODE_PID" "$ORCH_PID" "$H1_PID" "$H2_PID" "${BG_PIDS[@]}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null
  done
  local n
  for n in $(ip netns list | awk '{print $1}' | grep "^$NETNS_PREFIX"); do ip netns del "$n"; done
  tools/net-cleanup.sh "$BRIDGE"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

CTR() { ctr --address "$CONTAINERD_SOCK" -n "$NS" "$@"; }
log() { echo "chaos: $* [$(date +%T)]"; }

start_node() {  # the real runc sbxlet, on NODE_PORT (0: any)
  local log="$STATE/sbxlet.$RANDOM.log"
  bin/sbxlet --http-addr "127.0.0.1:$NODE_PORT" --state-dir "$STATE" --containerd-address "$CONTAINERD_SOCK" \
    --containerd-namespace "$NS" --runtime runc --runtime-root "$RTROOT" \
    --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$SECRET" \
    --bridge-interface "$BRIDGE" --subnet-cidr "$SUBNET" \
    --cni-conf-path "$STATE/cni/20-sbxnet.conflist" --netns-prefix "$NETNS_PREFIX" \
    --shutdown-grace 2 2>"$log" &
  NODE_PID=$!
  NODE_PORT=$(listening_port "$log" "$NODE_PID" "state recovered") && return 0
  echo "sbxlet did not start:" >&2
  tail -5 "$log" >&2
  return 1
}

start_hollow() {  # start_hollow DIR PORT: prints "PID PORT"
  local dir=$1 port=$2 log="$1/sbxlet.$RANDOM.log"
  bin/sbxlet --runtime sim --http-addr "127.0.0.1:$port" --state-dir "$dir" --shared-secret "$SECRET" \
    --cni-conf-path "$dir/none.conflist" --sim-cpu 8 --sim-memory 16Gi --subnet-cidr 10.89.0.0/20 \
    --sim-start-latency 50ms --sim-start-jitter 50ms 2>"$log" &
  local pid=$!
  port=$(listening_port "$log" "$pid" "state recovered") || return 1
  echo "$pid $port"
}

start_orch() {
  local log="$WORK/orch.$RANDOM.log"
  bin/sandboxd-o --http-addr "127.0.0.1:$ORCH_PORT" --shared-secret "$SECRET" \
    --sqlite-path "$WORK/db/orchestrator.db" --heartbeat-interval 500ms --probe-timeout 1s \
    --status-sync-interval 100ms --create-rps 1000 --create-burst 1000 --host-port-min 41000 --host-port-max 41999 --shutdown-grace 2 2>"$log" &
  ORCH_PID=$!
  ORCH_PORT=$(listening_port "$log" "$ORCH_PID") && return 0
  echo "sandboxd-o did not start:" >&2
  tail -5 "$log" >&2
  return 1
}

api() {  # api METHOD PORT PATH [BODY]
  curl -s -m 10 -X "$1" -H "$H" ${4:+-d "$4"} "http://127.0.0.1:$2$3"
}
# list_all PORT PATH: every page of a list endpoint (sbxlet clamps limit to
# 200, sandboxd-o to its max_list_items) as one {"items":[...]}.
list_all() {
  local cursor="" page out=""
  while :; do
    page=$(api GET "$1" "$2?limit=200${cursor:+&cursor=$cursor}")
    [ "$(jq -r '.items | type' <<<"$page" 2>/dev/null)" = array ] || return 1  # not answered
    out+=$(jq -c '.items[]' <<<"$page")$'\n'
    cursor=$(jq -r '.next_cursor // empty' <<<"$page")
    [ -n "$cursor" ] || break
  done
  jq -s '{items: .}' <<<"$out"
}
code() {  # code METHOD PORT PATH: the status code only
  curl -s -m 2 -o /dev/null -w '%{http_code}' -X "$1" -H "$H" "http://127.0.0.1:$2$3"
}

node_items() { list_all "$NODE_PORT" /v1/sandboxes | jq -c '.items[]'; }
settled() {  # no sandbox of the real node is creating or deleting
  local items
  items=$(list_all "$NODE_PORT" /v1/sandboxes) || return 1
  [ -n "$items" ] && [ "$(jq '[.items[] | select(.phase == "creating" or .phase == "deleting")] | length' <<<"$items")" = 0 ]
}

# Truthful phases on the real node: every running sandbox's containers have
# RUNNING tasks; every container, task, netns and IP lease belongs to a
# listed sandbox. Prints what is wrong; fails if anything is.
truthful() {
  local items ids why="" id c
  items=$(list_all "$NODE_PORT" /v1/sandboxes)
  ids=$(jq -r '.items[].id' <<<"$items")
  local tasks
  tasks=$(CTR tasks ls 2>/dev/null | awk 'NR>1 {print $1, $3}')
  for c in $(jq -r '.items[] | select(.phase == "running") | .containers[].id' <<<"$items"); do
    grep -qx "$c RUNNING" <<<"$tasks" || why="$why running-without-task:$c"
  done
  for c in $(CTR containers ls -q); do
    grep -qx "${c%-*}" <<<"$ids" || why="$why orphan-container:$c"
  done
  local n
  for n in $(ls /var/run/netns 2>/dev/null | grep "^$NETNS_PREFIX"); do
    grep -qx "${n#"$NETNS_PREFIX"}" <<<"$ids" || why="$why orphan-netns:$n"
  done
  local lease owner
  for lease in $(ls "$IPAM_DIR" 2>/dev/null | grep '^[0-9.]*$'); do
    owner=$(head -1 "$IPAM_DIR/$lease" | tr -d '\r')  # host-local writes "<id>\r\n<ifname>"
    grep -q "$owner" <<<"$(ls "$STATE/sandboxes" 2>/dev/null; CTR containers ls -q)" ||
      why="$why orphan-lease:$lease($owner)"
  done
  [ -z "$why" ] && return 0
  echo "untruthful:$why" >&2
  return 1
}

# Nothing of any sandbox is left on the real node (ids: the rounds' c<N>-,
# ctd-, keep-, after-ctd, and the control plane's o- and f-).
no_leaks() { node_leaks "c[0-9]*-*" "ctd-*" "keep-*" "after-ctd*" "o-*" "f-*"; }

delete_all_on_node() {  # deletes every sandbox of the real node, waits until none is left
  list_all "$NODE_PORT" /v1/sandboxes | jq -r '.items[].id' | delete_ids "$NODE_PORT" /v1/sandboxes
  wait_for 60 node_empty
}
node_empty() { [ "$(list_all "$NODE_PORT" /v1/sandboxes | jq '.items | length')" = 0 ]; }
delete_ids() {  # delete_ids PORT PREFIX < ids: DELETE PREFIX/<id> for each, 16 at a time
  xargs -r -P 16 -I{} curl -s -m 30 -o /dev/null -X DELETE -H "$H" "http://127.0.0.1:$1$2/{}"
}

# A poller of one daemon's API: one GET every 100 ms, each line "code ms".
poll_start() {  # poll_start NAME PORT PATH
  local out="$WORK/poll-$1"
  : >"$out"
  (while :; do
    curl -s -m 2 -o /dev/null -w '%{http_code} %{time_total}\n' -H "$H" "http://127.0.0.1:$2$3" >>"$out"
    sleep 0.1
  done) &
  POLL_PID=$!
  BG_PIDS+=("$POLL_PID")
}
poll_stop() {  # poll_stop NAME: prints "answered/total max_ms"; fails unless every request got 200
  kill "$POLL_PID" 2>/dev/null
  wait "$POLL_PID" 2>/dev/null
  local out="$WORK/poll-$1"
  POLL_SUMMARY=$(awk '{n++; if ($1 == 200) ok++; if ($2 > m) m = $2} END {printf "%d/%d answered, slowest %.0f ms", ok, n, m * 1000}' "$out")
  [ "$(awk '$1 != 200' "$out" | wc -l)" = 0 ] && [ "$(wc -l <"$out")" -gt 0 ]
}

loadgen_bg() {  # loadgen_bg NAME ARGS...: loadgen in the background, output in $WORK/NAME.out
  local name=$1
  shift
  bin/loadgen --secret "$SECRET" --image docker.io/library/busybox:latest --args 'sleep 3600' \
    --timeout 20s "$@" >"$WORK/$name.out" 2>&1 &
  LOADGEN_PID=$!
}

# ---- 1. kill -9 sbxlet during creates and deletes ----------------------------------------
check "sbxlet starts" start_node || exit 1
killed_total=0 ctd_kills=0 orch_kills=0 freezes=0
part 1 || ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
  loadgen_bg "r$round" --api sbxlet --target "127.0.0.1:$NODE_PORT" --concurrency "$CONC" \
    --mix create=3,delete=2 --duration 6s --id-prefix "c$round-"
  # A random moment in the first 4 s: during the creates' image unpack,
  # network setup, task start or the deletes.
  sleep "$((RANDOM % 4)).$((RANDOM % 10))"
  in_flight=$(list_all "$NODE_PORT" /v1/sandboxes | jq '[.items[] | select(.phase == "creating" or .phase == "deleting")] | length')
  kill -KILL "$NODE_PID"
  wait "$NODE_PID" 2>/dev/null
  killed_total=$((killed_total + 1))
  wait "$LOADGEN_PID" 2>/dev/null
  check "round $round: sbxlet restarts on its port after kill -9 (${in_flight:-?} in flight)" start_node || break
  check "round $round: nothing stays creating or deleting" wait_for 90 settled
  check "round $round: phases are truthful after the restart" truthful
  check "round $round: everything deleted" delete_all_on_node
  check "round $round: nothing leaked" no_leaks
  log "round $round done: $(grep -o '^create .*' "$WORK/r$round.out" | head -1)"
done

# ---- 2. kill -9 containerd ----------------------------------------------------------------
if part 2; then
# Two sandboxes that must survive (their shims do), then containerd dies
# during creates and comes back.
api POST "$NODE_PORT" /v1/sandboxes '{"id":"keep-1","containers":[{"name":"m","image":"busybox:latest","args":["sleep","3600"],"resource":{"cpu":"10m","memory":"16Mi"}}]}' >/dev/null
api POST "$NODE_PORT" /v1/sandboxes '{"id":"keep-2","containers":[{"name":"m","image":"busybox:latest","args":["sleep","3600"],"resource":{"cpu":"10m","memory":"16Mi"}}]}' >/dev/null
keep_running() { [ "$(list_all "$NODE_PORT" /v1/sandboxes | jq '[.items[] | select((.id == "keep-1" or .id == "keep-2") and .phase == "running")] | length')" = 2 ]; }
check "containerd: two sandboxes running first" wait_for 60 keep_running
poll_start node "$NODE_PORT" "/v1/sandboxes?limit=10"
loadgen_bg ctd --api sbxlet --target "127.0.0.1:$NODE_PORT" --concurrency 20 --mix create=3,delete=1 \
  --duration 8s --id-prefix ctd-
sleep 2
ctd_cmd=$(tr '\0' ' ' <"/proc/$CONTAINERD_PID/cmdline")
kill -KILL "$CONTAINERD_PID"
ctd_kills=$((ctd_kills + 1))
wait "$CONTAINERD_PID" 2>/dev/null
sleep 3  # creates meet a dead containerd
# shellcheck disable=SC2086 # the command line as it was
$ctd_cmd </dev/null >>"$CONTAINERD_LOG" 2>&1 &
CONTAINERD_PID=$!
echo "CONTAINERD_PID=$CONTAINERD_PID" >>"$SBX_ENV_DIR/env.sh"  # down.sh stops the new one
ctd_up() { timeout 2 ctr --address "$CONTAINERD_SOCK" --connect-timeout 1s version >/dev/null 2>&1; }
check "containerd restarts" wait_for 20 ctd_up
wait "$LOADGEN_PID" 2>/dev/null
poll_stop node
check "containerd: sbxlet answered throughout ($POLL_SUMMARY)" test "$(awk '$1 != 200' "$WORK/poll-node" | wc -l)" = 0
log "containerd: $POLL_SUMMARY; $(grep -o '^create .*' "$WORK/ctd.out" | head -1)"
check "containerd: nothing stays creating or deleting" wait_for 90 settled
check "containerd: the two sandboxes kept running" keep_running
check "containerd: phases are truthful" truthful
r=$(api POST "$NODE_PORT" /v1/sandboxes '{"id":"after-ctd","containers":[{"name":"m","image":"busybox:latest","args":["sleep","3600"],"resource":{"cpu":"10m","memory":"16Mi"}}]}')
after_running() { has "$(api GET "$NODE_PORT" /v1/sandboxes/after-ctd)" '"phase":"running"'; }
check "containerd: a create after the restart runs ($r)" wait_for 60 after_running
check "containerd: everything deleted" delete_all_on_node
check "containerd: nothing leaked" no_leaks
fi

# ---- 3. kill -9 sandboxd-o while it schedules --------------------------------------------
if part 3 || part 4; then
read -r H1_PID H1_PORT < <(start_hollow "$WORK/h1" 0) || { bad "hollow node 1 starts"; exit 1; }
read -r H2_PID H2_PORT < <(start_hollow "$WORK/h2" 0) || { bad "hollow node 2 starts"; exit 1; }
check "sandboxd-o starts" start_orch || exit 1
for n in "real:$NODE_PORT" "h1:$H1_PORT" "h2:$H2_PORT"; do
  api POST "$ORCH_PORT" /api/v1/nodes "{\"id\":\"${n%%:*}\",\"spec\":{\"ip\":\"127.0.0.1\",\"port\":${n#*:}}}" >/dev/null
done
all_ready() { [ "$(api GET "$ORCH_PORT" /api/v1/nodes | jq '[.items[] | select(.state == "Ready")] | length')" = 3 ]; }
check "sandboxd-o: three nodes Ready" wait_for 20 all_ready

orch_settled() {
  [ "$(list_all "$ORCH_PORT" /api/v1/sandboxes | jq '[.items[] | select(.status.phase != "Running" and .status.phase != "Failed")] | length')" = 0 ]
}
# The control plane's view matches the nodes': each of its sandboxes on its
# node in the same phase, nothing on a node it does not know of, and no
# (node, host port) booked twice.
orch_consistent() {
  local items why="" n port
  items=$(list_all "$ORCH_PORT" /api/v1/sandboxes | jq -c '.items[]')
  local dups
  dups=$(jq -r '.status.node_name as $n | .status.assigned_ports[]? | "\($n) \(.host_port)"' <<<"$items" | sort | uniq -d)
  [ -z "$dups" ] || why="$why double-booked:$(tr '\n' ' ' <<<"$dups")"
  for n in "real:$NODE_PORT" "h1:$H1_PORT" "h2:$H2_PORT"; do
    port=${n#*:}
    n=${n%%:*}
    local mine theirs listed
    listed=$(list_all "$port" /v1/sandboxes)
    mine=$(jq -r --arg n "$n" 'select(.status.node_name == $n and .status.phase == "Running") | .id' <<<"$items" | sort)
    theirs=$(jq -r '.items[] | select(.phase == "running") | .id' <<<"$listed" | sort)
    [ "$mine" = "$theirs" ] || why="$why $n:running-differs($(diff <(echo "$mine") <(echo "$theirs") | grep '^[<>]' | head -3 | tr '\n' ' '))"
    local all
    all=$(jq -r '.items[].id' <<<"$listed" | sort)
    [ "$all" = "$(jq -r --arg n "$n" 'select(.status.node_name == $n) | .id' <<<"$items" | sort)" ] ||
      why="$why $n:sandboxes-differ"
    # Host ports the node booked: each one once.
    dups=$(jq -r '.items[].ports[]?.hostPort' <<<"$listed" | sort | uniq -d)
    [ -z "$dups" ] || why="$why $n:node-double-booked"
  done
  [ -z "$why" ] && return 0
  echo "inconsistent:$why" >&2
  return 1
}

if part 3; then
poll_start nodes "$NODE_PORT" /healthz
loadgen_bg orch --api orch --target "127.0.0.1:$ORCH_PORT" --concurrency 30 --mix create=4,delete=1 \
  --duration 5s --ports 1 --id-prefix o-
sleep "1.$((RANDOM % 10))"
kill -KILL "$ORCH_PID"
orch_kills=$((orch_kills + 1))
wait "$ORCH_PID" 2>/dev/null
wait "$LOADGEN_PID" 2>/dev/null
check "sandboxd-o restarts on its port after kill -9" start_orch
poll_stop nodes
check "sandboxd-o: the real node answered throughout ($POLL_SUMMARY)" test "$(awk '$1 != 200' "$WORK/poll-nodes" | wc -l)" = 0
check "sandboxd-o: every sandbox settles (Running or Failed)" wait_for 90 orch_settled
check "sandboxd-o: its view matches the nodes', no port twice" wait_for 30 orch_consistent
log "sandboxd-o: $(list_all "$ORCH_PORT" /api/v1/sandboxes | jq -r '[.items[].status.phase] | group_by(.) | map("\(.[0]) \(length)") | join(", ")')"
fi

# ---- 4. SIGSTOP the real node -------------------------------------------------------------
if part 4; then
node_state() { [ "$(api GET "$ORCH_PORT" /api/v1/nodes/real | jq -r .node.state)" = "$1" ]; }
running_on_real=$(list_all "$NODE_PORT" /v1/sandboxes | jq '[.items[] | select(.phase == "running")] | length')
poll_start orch "$ORCH_PORT" "/api/v1/sandboxes?limit=100"
kill -STOP "$NODE_PID"
freezes=$((freezes + 1))
check "frozen node: NotReady" wait_for 15 node_state NotReady
# Creates while it is frozen go to the hollow nodes, and are answered.
loadgen_bg frozen --api orch --target "127.0.0.1:$ORCH_PORT" --concurrency 8 --mix create=1 \
  --count 40 --ports 1 --id-prefix f- --wait-running --wait-timeout 30s
wait "$LOADGEN_PID"
check "frozen node: creates elsewhere succeed ($(grep -o '^create .*' "$WORK/frozen.out" | head -1))" test $? -eq 0
kill -CONT "$NODE_PID"
check "thawed node: Ready again" wait_for 15 node_state Ready
poll_stop orch
check "frozen node: sandboxd-o answered throughout ($POLL_SUMMARY)" test "$(awk '$1 != 200' "$WORK/poll-orch" | wc -l)" = 0
check "thawed node: its sandboxes still run" test "$(list_all "$NODE_PORT" /v1/sandboxes | jq '[.items[] | select(.phase == "running")] | length')" = "$running_on_real"
check "thawed node: every sandbox settles" wait_for 60 orch_settled
check "thawed node: the views match, no port twice" wait_for 30 orch_consistent
check "thawed node: phases truthful on the real node" truthful
fi

# Everything through the control plane, then nothing anywhere.
list_all "$ORCH_PORT" /api/v1/sandboxes | jq -r '.items[].id' | delete_ids "$ORCH_PORT" /api/v1/sandboxes
orch_empty() { [ "$(list_all "$ORCH_PORT" /api/v1/sandboxes | jq '.items | length')" = 0 ]; }
check "all deleted through sandboxd-o" wait_for 60 orch_empty
check "the real node is empty" wait_for 30 node_empty
for n in "$H1_PORT" "$H2_PORT"; do
  check "hollow node on $n is empty" test "$(list_all "$n" /v1/sandboxes | jq '.items | length')" = 0
done
check "nothing leaked on the real node" no_leaks
fi
[ -z "${CHAOS_HOLD:-}" ] || { echo "chaos: holding (CHAOS_HOLD) for inspection"; sleep 100000 & wait $!; }

echo "chaos: $killed_total sbxlet kills, $ctd_kills containerd kills, $orch_kills sandboxd-o kills, $freezes freezes"
echo "chaos: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
