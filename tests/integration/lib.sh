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
