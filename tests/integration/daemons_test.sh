#!/usr/bin/env bash
# Integration: the real daemon binaries. Each starts on a loopback port of its
# own choosing (127.0.0.1:0), answers /healthz, rejects bad flags, and exits 0
# on SIGTERM and on SIGINT after draining. Prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
pids=()
work=$(mktemp -d /tmp/sbx-daemons-test.XXXXXX)
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  tools/net-cleanup.sh "$TEST_BRIDGE"
  rm -rf "$work"
}
trap cleanup EXIT
# sbxlet's network of the test's own (bridge, subnet, conflist, netns
# names), removed by cleanup: the host's sbx-br0 is never touched.
TEST_BRIDGE=sbxdt$(( $$ % 100000 ))
SBXLET_NET=(--bridge-interface "$TEST_BRIDGE" --subnet-cidr 10.232.0.0/24
  --cni-conf-path "$work/cni/20-sbxnet.conflist" --netns-prefix "sbxdt-")

check() {  # check NAME CONDITION...
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $name" >&2
  fi
}

# Starts a daemon on 127.0.0.1:0 and sets PORT and PID from its log.
start_daemon() {
  local bin=$1 log=$2
  # sbxlet keeps its state and secret in a directory of the test's own, and
  # points at a containerd socket that does not exist (only HTTP is tested).
  local extra=()
  case "$bin" in
    */sbxlet) extra=("${SBXLET_NET[@]}" --state-dir "$work/state" --containerd-address "$work/no-containerd.sock") ;;
    */sandboxd-o) extra=(--sqlite-path "$work/orch/orchestrator.db") ;;
  esac
  "$bin" --http-addr 127.0.0.1:0 --shutdown-grace 5 "${extra[@]}" 2>"$log" &
  PID=$!
  pids+=("$PID")
  PORT=""
  for _ in $(seq 1 200); do
    PORT=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$log" | grep -o '"port":"[0-9]*"' | grep -o '[0-9]*')
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}

for daemon in sbxlet sandboxd-o; do
  bin="bin/$daemon"
  check "$daemon --help exits 0" bash -c "'$bin' --help | grep -q -- --http-addr"
  "$bin" --bogus >/dev/null 2>"$work/bogus.err"
  check "$daemon rejects unknown flags with 2" test $? -eq 2
  check "$daemon names the unknown flag" grep -q -- "unknown flag --bogus" "$work/bogus.err"
  "$bin" --http-addr nope >/dev/null 2>"$work/addr.err"
  check "$daemon rejects a bad address with 2" test $? -eq 2

  for sig in TERM INT; do
    log="$work/$daemon-$sig.log"
    check "$daemon starts" start_daemon "$bin" "$log"
    body=$(curl -fsS "http://127.0.0.1:$PORT/healthz")
    check "$daemon /healthz" test "$body" = '{"ok":true}'
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")
    check "$daemon 404" test "$code" = 404
    check "$daemon access log line" grep -q '"msg":"access","method":"GET","path":"/healthz","status":200' "$log"
    if [ "$sig" = TERM ]; then
      # One daemon per state: a second one on the same state directory or
      # database exits 1, naming the holder, and the first keeps serving.
      first=$PID
      first_port=$PORT
      second_log="$work/$daemon-second.log"
      start_daemon "$bin" "$second_log"
      wait "$PID"
      check "$daemon: a second instance on the same state exits 1" test $? -eq 1
      check "$daemon: ... naming the first one's pid" grep -q "another process (pid $first) holds" "$second_log"
      PID=$first
      PORT=$first_port
      check "$daemon: the first one still serves" test "$(curl -fsS "http://127.0.0.1:$PORT/healthz")" = '{"ok":true}'
    fi
    kill -"$sig" "$PID"
    wait "$PID"
    rc=$?
    check "$daemon exits 0 on SIG$sig" test "$rc" -eq 0
    check "$daemon logs its stop" grep -q '"msg":"stopped"' "$log"
  done
done

# sbxlet generated its shared secret into its state dir, 0600, and logged
# only the path.
check "secret file is 0600" test "$(stat -c %a "$work/state/secret")" = 600
check "secret value never logged" bash -c "! grep -qF \"\$(cat '$work/state/secret')\" '$work'/sbxlet-*.log"
check "secret path logged" grep -q '"msg":"shared secret in use","path":"'"$work/state/secret"'"' "$work/sbxlet-TERM.log"
# So did sandboxd-o, beside its database.
check "sandboxd-o secret file is 0600" test "$(stat -c %a "$work/orch/sbxorch_secret")" = 600
check "sandboxd-o secret value never logged" bash -c "! grep -qF \"\$(cat '$work/orch/sbxorch_secret')\" '$work'/sandboxd-o-*.log"
check "sandboxd-o secret path logged" grep -q '"msg":"shared secret in use","path":"'"$work/orch/sbxorch_secret"'"' "$work/sandboxd-o-TERM.log"
check "no warning about a 0600 secret file" bash -c "! grep -q '\"msg\":\"shared secret file\"' '$work'/sbxlet-TERM.log '$work'/sandboxd-o-TERM.log"

# A secret file others can read (an operator's loose umask): used, with a
# warning that names its mode.
chmod 644 "$work/orch/sbxorch_secret"
check "sandboxd-o starts with a 0644 secret file" start_daemon bin/sandboxd-o "$work/loose.log"
kill -TERM "$PID"; wait "$PID"
check "... and warns, naming the mode" grep -q '"msg":"shared secret file","warning":"'"$work/orch/sbxorch_secret"' has mode 0644' "$work/loose.log"

# A port already taken: a clear error and exit 1.
start_daemon bin/sbxlet "$work/first.log"
bin/sbxlet --http-addr "127.0.0.1:$PORT" "${SBXLET_NET[@]}" --state-dir "$work/state2" --cni-conf-path "$work/cni2/20-sbxnet.conflist" 2>"$work/busy.err"
check "busy port exits 1" test $? -eq 1
check "busy port message" grep -q "Address already in use" "$work/busy.err"
kill -TERM "$PID"; wait "$PID"

echo "daemons: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
