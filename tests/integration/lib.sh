# Shared by the integration scripts (sourced): pass/fail counting, checks on
# text, waiting on conditions, and a daemon's listening port from its log.
# shellcheck shell=bash

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*" >&2; }
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok; else bad "$name"; fi
}

# has TEXT PATTERN...: every (basic) regex matches TEXT; lacks TEXT PATTERN:
# none does. TEXT is passed as an argument, never spliced into a command.
has() {
  local text=$1 p
  shift
  for p in "$@"; do grep -q -e "$p" <<<"$text" || return 1; done
}
lacks() { ! grep -q -e "$2" <<<"$1"; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds (polled every 0.1 s).
wait_for() {
  local until=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $until ]; do
    "$@" && return 0
    sleep 0.1
  done
  "$@"
}

# listening_port LOG PID [READY_MSG]: waits (10 s at most) until the daemon
# PID logged its "listening" line (and READY_MSG, if given) in LOG; prints
# the port. Fails if the daemon exits first or never gets there.
listening_port() {
  local log=$1 pid=$2 ready=${3:-} port=""
  for _ in $(seq 1 200); do
    port=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$log" 2>/dev/null | tail -1 |
      grep -o '"port":"[0-9]*"' | grep -o '[0-9]*')
    if [ -n "$port" ] && { [ -z "$ready" ] || grep -q "\"msg\":\"$ready\"" "$log"; }; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

# node_leaks [GLOB...]: fails, printing "leaks: ...", if anything of any
# sandbox of one sbxlet is left. That sbxlet is described by NS (its
# containerd namespace), NETNS_PREFIX, BRIDGE, IPAM_DIR, STATE and RTROOT,
# on CONTAINERD_SOCK. GLOBs name its sandboxes' ids (default "$NS-*") for
# what is found by name only: cgroups, mounts and firewall tags.
node_leaks() {
  local globs=("$@") why="" c
  [ ${#globs[@]} -gt 0 ] || globs=("$NS-*")
  local ctr=(ctr --address "$CONTAINERD_SOCK" -n "$NS")
  c=$("${ctr[@]}" containers ls -q)
  [ -z "$c" ] || why="$why containers:$(head -5 <<<"$c" | tr '\n' ' ')"
  [ -z "$("${ctr[@]}" tasks ls -q 2>/dev/null)" ] || why="$why tasks"
  "${ctr[@]}" snapshots ls | awk 'NR>1 && $3=="Active"' | grep -q . && why="$why active-snapshots"
  c=$("${ctr[@]}" leases ls -q)
  [ -z "$c" ] || why="$why leases:$(head -5 <<<"$c" | tr '\n' ' ')"
  ip netns list | awk '{print $1}' | grep -q "^$NETNS_PREFIX" && why="$why netns"
  [ -z "$(ip -o link show master "$BRIDGE" 2>/dev/null)" ] || why="$why veths"
  c=$(ls "$IPAM_DIR" 2>/dev/null | grep '^[0-9.]*$')
  [ -z "$c" ] || why="$why ip-leases:$(head -5 <<<"$c" | tr '\n' ' ')"
  # Per-sandbox rules live in SBX-EGR-<bridge>, tagged "sandboxd:<id>".
  iptables-save | grep -q -e "^-A SBX-EGR-$BRIDGE " -e "sandboxd:$NS-" && why="$why firewall-rules"
  iptables-save -t nat | grep -q "\"$NS-" && why="$why nat-rules"
  c=$(ls "$STATE/sandboxes" 2>/dev/null)
  [ -z "$c" ] || why="$why state-dirs:$(head -5 <<<"$c" | tr '\n' ' ')"
  c=$(ls "$RTROOT" 2>/dev/null)
  [ -z "$c" ] || why="$why runtime-roots:$(head -5 <<<"$c" | tr '\n' ' ')"
  grep -q -e "/$NS/" -e "$NS-" /proc/self/mountinfo && why="$why mounts"
  local g names=()
  for g in "${globs[@]}"; do names+=(-o -name "$g"); done
  find /sys/fs/cgroup/*/sandboxd /sys/fs/cgroup/sandboxd -mindepth 1 -type d \( "${names[@]:1}" \) \
    2>/dev/null | grep -q . && why="$why cgroups"
  [ -z "$why" ] && return 0
  echo "leaks:$why" >&2
  return 1
}
