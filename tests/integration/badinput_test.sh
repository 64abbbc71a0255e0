#!/usr/bin/env bash
# Integration: bin/badinput against the real daemons (run through
# tools/run-integration.sh, which exports CONTAINERD_SOCK, REGISTRY_ADDR,
# RUNC_ROOT, RUNSC_ROOT, SBX_ENV_DIR).
#   1. a real sbxlet (runc) with one running sandbox; bin/badinput --api
#      sbxlet sends it every bad-input case; before and after, the node's
#      state is snapshotted (its API's list and status, its state files,
#      containerd's containers/tasks/snapshots/leases, netns, veths, IP
#      leases, firewall rules, cgroups, runtime root) and must be equal, and
#      the sandbox still running;
#   2. sandboxd-o over that node, with one sandbox of its own; bin/badinput
#      --api orch; its nodes and sandboxes and the node's state unchanged.
# What a wrongly accepted case created is named by a check of its own, then
# deleted before the "after" snapshot, so the comparison shows every other
# change. Then everything is deleted and nothing may be left. Ends with
# "badinput: N passed, M failed" (N: every case of both runs that passed,
# plus the checks here).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

: "${CONTAINERD_SOCK:?run through tools/run-integration.sh}"
# shellcheck source=tests/integration/lib.sh
. tests/integration/lib.sh
for b in bin/sbxlet bin/sandboxd-o bin/badinput; do
  [ -x "$b" ] || { echo "badinput_test: $b is not built" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "badinput_test: jq is missing (tools/deps.sh)" >&2; exit 2; }

SECRET=badinput-node-secret-0123456789
ORCH_SECRET=badinput-orch-secret-0123456789
H="Authorization: Bearer $SECRET"
OH="Authorization: Bearer $ORCH_SECRET"
NS=sbxit-bad
BRIDGE=sbxit-bad
SUBNET=10.231.9.0/24
NETNS_PREFIX=sbxit-bad-
WORK="$SBX_ENV_DIR/badinput"
STATE="$WORK/sbxlet"
RTROOT="$RUNC_ROOT/badinput"
IPAM_DIR="$STATE/cni/networks/sbxnet-$BRIDGE"
KEEP=sbxit-bad-keep        # the node's own sandbox
OKEEP=sbxit-bad-okeep      # the control plane's sandbox
NODE=bad-node
SBX_PID=""
ORCH_PID=""
PORT=""
ORCH_PORT=""
mkdir -p "$WORK" "$STATE"

cleanup() {
  [ -n "$ORCH_PID" ] && kill -KILL "$ORCH_PID" 2>/dev/null
  [ -n "$SBX_PID" ] && kill -KILL "$SBX_PID" 2>/dev/null
  [ -n "$ORCH_PID$SBX_PID" ] && wait 2>/dev/null
  # The sandboxes' netns a killed sbxlet could not remove; only ours.
  local n
  for n in $(ip netns list | awk '{print $1}' | grep -E "^$NETNS_PREFIX"); do ip netns del "$n"; done
  tools/net-cleanup.sh "$BRIDGE"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

CTR() { ctr --address "$CONTAINERD_SOCK" -n "$NS" "$@"; }

# call METHOD PATH [BODY] (node) / ocall (control plane): set BODY and CODE.
call() {
  local out
  out=$(curl -s -m 30 -w '\n%{http_code}' -X "$1" -H "$H" "http://127.0.0.1:$PORT$2" ${3:+-d "$3"})
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
ocall() {
  local out
  out=$(curl -s -m 30 -w '\n%{http_code}' -X "$1" -H "$OH" "http://127.0.0.1:$ORCH_PORT$2" ${3:+-d "$3"})
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
api() { call "$@"; printf '%s' "$BODY"; }
oapi() { ocall "$@"; printf '%s' "$BODY"; }

phase_of() { api GET "/v1/sandboxes/$1" | jq -r '.sandbox.phase // empty' 2>/dev/null; }
is_phase() { [ "$(phase_of "$1")" = "$2" ]; }
ophase_of() { oapi GET "/api/v1/sandboxes/$1" | jq -r '.sandbox.status.phase // empty' 2>/dev/null; }
is_ophase() { [ "$(ophase_of "$1")" = "$2" ]; }
node_ready() { [ "$(oapi GET "/api/v1/nodes/$NODE" | jq -r '.node.state' 2>/dev/null)" = Ready ]; }

# Every sandbox id on the node / in the control plane, every node id there.
node_ids() { api GET "/v1/sandboxes?limit=200" | jq -r '.items[].id' | sort; }
orch_ids() { oapi GET "/api/v1/sandboxes" | jq -r '.items[].id' | sort; }
orch_nodes() { oapi GET "/api/v1/nodes" | jq -r '.items[].id' | sort; }
# new_ids BEFORE AFTER: the lines of AFTER not in BEFORE (sorted lists).
new_ids() { comm -13 <(printf '%s\n' "$1" | grep .) <(printf '%s\n' "$2" | grep .); }
# delete_all BASE_URL AUTH PATH_PREFIX ID...: in parallel; waits for all.
delete_all() {
  local url=$1 auth=$2 prefix=$3 id
  shift 3
  for id in "$@"; do curl -s -o /dev/null -m 60 -X DELETE -H "$auth" "$url$prefix$id" & done
  wait_children
}
# nothing_new WHAT BEFORE AFTER: a check that AFTER added nothing to BEFORE
# (naming what it added); sets NEW.
nothing_new() {
  NEW=$(new_ids "$2" "$3")
  check "no case created $1 (created: $(tr '\n' ' ' <<<"$NEW"))" test -z "$NEW"
}
# Nothing on its way: no node sandbox creating, no control-plane sandbox
# Pending/Scheduled. Waited for (a while, not a check: a wrongly accepted
# sandbox may never get past "creating") before an "after" snapshot, so a
# case that was wrongly accepted has shown its effects.
node_settled() { ! api GET "/v1/sandboxes?limit=200" | jq -e '.items[] | select(.phase == "creating")' >/dev/null; }
orch_settled() {
  ! oapi GET /api/v1/sandboxes | jq -e '.items[] | select(.status.phase == "Pending" or .status.phase == "Scheduled")' >/dev/null
}

start_sbxlet() {
  local log="$STATE/sbxlet.log"
  bin/sbxlet --http-addr 127.0.0.1:0 --state-dir "$STATE" --containerd-address "$CONTAINERD_SOCK" \
    --containerd-namespace "$NS" --runtime runc --runtime-root "$RTROOT" \
    --registry-mirrors "{\"docker.io\":[\"http://$REGISTRY_ADDR\"]}" --shared-secret "$SECRET" \
    --bridge-interface "$BRIDGE" --subnet-cidr "$SUBNET" \
    --cni-conf-path "$STATE/cni/20-sbxnet.conflist" --netns-prefix "$NETNS_PREFIX" \
    --shutdown-grace 2 2>"$log" &
  SBX_PID=$!
  PORT=$(listening_port "$log" "$SBX_PID" "state recovered") && return 0
  echo "sbxlet did not start; log:" >&2
  tail -5 "$log" >&2
  return 1
}

start_orch() {
  local log="$WORK/orch.log"
  mkdir -p "$WORK/db"
  # Create rate far above what the cases send: a 429 would hide what a case
  # tests (badinput retries after Retry-After, but slowly).
  bin/sandboxd-o --http-addr 127.0.0.1:0 --shared-secret "$ORCH_SECRET" \
    --node-shared-secret "$SECRET" --sqlite-path "$WORK/db/orchestrator.db" \
    --heartbeat-interval 500ms --probe-timeout 1s --status-sync-interval 100ms \
    --host-port-min 41000 --host-port-max 41099 --create-rps 1000000 --create-burst 1000000 \
    --shutdown-grace 2 2>"$log" &
  ORCH_PID=$!
  ORCH_PORT=$(listening_port "$log" "$ORCH_PID") && return 0
  echo "sandboxd-o did not start; log:" >&2
  tail -5 "$log" >&2
  return 1
}

stop_pid() {  # stop_pid VAR: SIGTERM the daemon in $VAR, wait, clear VAR
  local pid=${!1}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  printf -v "$1" '%s' ""
}

# The node's state, minus what changes by itself (timestamps, counters,
# daemon logs), one "== section" per source so a diff says where.
snap_node() {
  echo "== api: sandboxes"
  api GET "/v1/sandboxes?limit=200" | jq -S '[.items[] | del(.updatedAt) | .containers |= map_values(del(.taskStatus))]'
  echo "== api: node status"
  api GET /v1/node/status | jq -S 'del(.resources.updated_at)'
  echo "== state files"
  (cd "$STATE" && find . -type f ! -name '*.log' | sort)
  echo "== containerd: containers"
  CTR containers ls -q | sort
  echo "== containerd: tasks"
  CTR tasks ls 2>/dev/null | awk 'NR>1 {print $1, $3}' | sort
  echo "== containerd: active snapshots"
  CTR snapshots ls | awk 'NR>1 && $3=="Active" {print $1}' | sort
  echo "== containerd: leases"
  CTR leases ls -q | sort
  echo "== netns"
  ip netns list | awk '{print $1}' | grep -E "^$NETNS_PREFIX" | sort
  echo "== veths on $BRIDGE"
  ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | sort
  echo "== ip leases"
  find "$IPAM_DIR" -maxdepth 1 -name '[0-9]*.[0-9]*' -printf '%f\n' 2>/dev/null | sort
  echo "== firewall"
  { iptables-save; iptables-save -t nat; } 2>/dev/null | grep -E "$NS|$BRIDGE" | grep -v '^#' |
    sed -E 's/\[[0-9]+:[0-9]+\]//g' | sort
  echo "== cgroups"
  find /sys/fs/cgroup/*/sandboxd /sys/fs/cgroup/sandboxd -mindepth 1 -maxdepth 2 -type d \
    \( -name "$NS-*" -o -name 'badinput-*' \) 2>/dev/null | sort
  echo "== runtime root"
  find "$RTROOT" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort
}

snap_orch() {
  echo "== control plane: nodes"
  oapi GET /api/v1/nodes | jq -S '[.items[] | {id, ip, port, source, sbxlet_base_url, external: .resources.external}]'
  echo "== control plane: sandboxes"
  oapi GET /api/v1/sandboxes | jq -S '[.items[] | del(.updated_at) | .status |= del(.message)]'
}

# same NAME BEFORE AFTER: one check per section of two snapshots.
same() {
  local what=$1 before=$2 after=$3 sec
  for sec in $(grep '^== ' "$before" "$after" | cut -d' ' -f2- | tr ' ' '_' | sort -u); do
    local name=${sec//_/ }
    if diff <(sed -n "/^== $name\$/,/^== /p" "$before" | grep -v '^== ') \
      <(sed -n "/^== $name\$/,/^== /p" "$after" | grep -v '^== ') >"$WORK/diff" 2>&1; then
      ok
    else
      bad "$what: $name changed:"
      head -20 "$WORK/diff" | sed 's/^/    /' >&2
    fi
  done
}

# Runs bin/badinput with ARGS; adds its counts to ours.
run_badinput() {
  local out="$WORK/badinput.$1.out"
  shift
  bin/badinput --secret-file "$WORK/secret.$1" "${@:2}" >"$out" 2>&1
  local rc=$? line p f
  grep -E '^(FAIL|badinput:)' "$out" | grep -v '^badinput: .* passed, .* failed$'
  line=$(grep -E '^badinput: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
  if [ -z "$line" ]; then
    bad "bin/badinput $* gave no summary (exit $rc):"
    tail -5 "$out" >&2
    return 1
  fi
  p=$(awk '{print $2}' <<<"$line")
  f=$(awk '{print $4}' <<<"$line")
  passed=$((passed + p))
  failed=$((failed + f))
  echo "bin/badinput ${*:2}: $p passed, $f failed"
}

no_leaks() { node_leaks "$NS-*" "badinput-*"; }  # everything the node's sandboxes owned is gone

NODE_URL() { echo "http://127.0.0.1:$PORT"; }
ORCH_URL() { echo "http://127.0.0.1:$ORCH_PORT"; }

delete_everything() {
  # shellcheck disable=SC2046
  [ -n "$ORCH_PID" ] && delete_all "$(ORCH_URL)" "$OH" /api/v1/sandboxes/ $(orch_ids)
  # shellcheck disable=SC2046
  delete_all "$(NODE_URL)" "$H" /v1/sandboxes/ $(node_ids)
}
# Waits for this shell's background curls (not the daemons).
wait_children() { while pgrep -P $$ curl >/dev/null; do sleep 0.1; done; }

printf '%s\n' "$SECRET" >"$WORK/secret.node"
printf '%s\n' "$ORCH_SECRET" >"$WORK/secret.orch"

# ---- 1. sbxlet ---------------------------------------------------------------------------
# (lib.sh's check does not return the command's status.)
if start_sbxlet; then
  ok
else
  bad "sbxlet starts"
  echo "badinput: $passed passed, $failed failed"
  exit 1
fi
call POST /v1/sandboxes "{\"id\":\"$KEEP\",\"ports\":[{\"hostPort\":39191,\"containerPort\":8080}],\"containers\":[{\"name\":\"main\",\"image\":\"busybox:latest\",\"args\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; echo badinput-keep; sleep 3600 & wait\"],\"resource\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"}}]}"
check "the node's sandbox is accepted (got $CODE $BODY)" test "$CODE" = 202
check "the node's sandbox runs" wait_for 60 is_phase "$KEEP" running

# A case wrongly accepted creates a sandbox: that fails its case and the
# "no case created" check below, and is then deleted, so that the snapshot
# comparison shows every other change (and a delete that leaves something).
ids_before=$(node_ids)
snap_node >"$WORK/node.before"
run_badinput sbxlet node --api sbxlet --target "127.0.0.1:$PORT" --existing-id "$KEEP"
wait_for 10 node_settled
nothing_new "a sandbox on the node" "$ids_before" "$(node_ids)"
# shellcheck disable=SC2086
delete_all "$(NODE_URL)" "$H" /v1/sandboxes/ $NEW
snap_node >"$WORK/node.after"
same "sbxlet run" "$WORK/node.before" "$WORK/node.after"
check "the node's sandbox still runs" is_phase "$KEEP" running
check "sbxlet is still up" kill -0 "$SBX_PID"

# ---- 2. sandboxd-o -------------------------------------------------------------------------
if start_orch; then
  ok
  ocall POST /api/v1/nodes "{\"id\":\"$NODE\",\"spec\":{\"ip\":\"127.0.0.1\",\"port\":$PORT}}"
  check "the node is registered (got $CODE $BODY)" test "$CODE" = 200
  check "the node becomes Ready" wait_for 15 node_ready
  ocall POST /api/v1/sandboxes "{\"id\":\"$OKEEP\",\"spec\":{\"ports\":[{\"container_port\":8080}],\"containers\":[{\"name\":\"web\",\"image\":\"busybox:latest\",\"args\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; sleep 3600 & wait\"],\"resource\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"}}]}}"
  check "the control plane's sandbox is accepted (got $CODE $BODY)" test "$CODE" = 202
  check "the control plane's sandbox runs" wait_for 60 is_ophase "$OKEEP" Running
  check "... on the node" wait_for 20 is_phase "$OKEEP" running

  ids_before=$(node_ids)
  oids_before=$(orch_ids)
  nodes_before=$(orch_nodes)
  { snap_orch; snap_node; } >"$WORK/orch.before"
  run_badinput orch orch --api orch --target "127.0.0.1:$ORCH_PORT" --node "$NODE" --existing-id "$OKEEP"
  wait_for 10 orch_settled
  wait_for 10 node_settled
  nothing_new "a control-plane sandbox" "$oids_before" "$(orch_ids)"
  # shellcheck disable=SC2086
  delete_all "$(ORCH_URL)" "$OH" /api/v1/sandboxes/ $NEW
  nothing_new "a node" "$nodes_before" "$(orch_nodes)"
  for n in $NEW; do curl -s -o /dev/null -m 30 -X DELETE -H "$OH" "$(ORCH_URL)/api/v1/nodes/$n?force=true"; done
  nothing_new "a sandbox on the node (through the proxy)" "$ids_before" "$(node_ids)"
  # shellcheck disable=SC2086
  delete_all "$(NODE_URL)" "$H" /v1/sandboxes/ $NEW
  { snap_orch; snap_node; } >"$WORK/orch.after"
  same "sandboxd-o run" "$WORK/orch.before" "$WORK/orch.after"
  check "the control plane's sandbox still runs" is_ophase "$OKEEP" Running
  check "the node's sandbox still runs" is_phase "$KEEP" running
  check "sandboxd-o is still up" kill -0 "$ORCH_PID"
else
  bad "sandboxd-o starts"
fi

# ---- cleanup -------------------------------------------------------------------------------
delete_everything
check "the control plane holds no sandbox" test -z "$([ -n "$ORCH_PID" ] && orch_ids)"
check "the node holds no sandbox" test -z "$(node_ids)"
stop_pid ORCH_PID
stop_pid SBX_PID
check "nothing is left on the node" no_leaks
tools/net-cleanup.sh "$BRIDGE"
check "no firewall chain of ours after net-cleanup" bash -c "! iptables-save | grep -q 'SBX-[A-Z]*-$BRIDGE'"

echo "badinput: the test took ${SECONDS}s"
echo "badinput: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
