#!/usr/bin/env bash
# make up: the whole system on this machine, offline, on embedded defaults:
#   - a containerd and a registry of sandboxd's own under run/env
#     (tests/env/up.sh: own root, state and socket; the registry on loopback
#     holds images under the seeds' names: alpine:3.20, python:3.12-alpine, ...)
#   - sbxlet on :8080 with run/sbxlet.json (runtime runsc through
#     tools/runsc-host, the registry as the docker.io mirror)
#   - sandboxd-o on :8082
# PIDs and logs under run/; `make down` stops everything by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd -P)
mkdir -p run

env_alive() {
  [ -f run/env/env.sh ] || return 1
  # shellcheck disable=SC1091
  (. run/env/env.sh && kill -0 "$CONTAINERD_PID" 2>/dev/null && kill -0 "$REGISTRY_PID" 2>/dev/null)
}
if ! env_alive; then
  [ -d run/env ] && tests/env/down.sh run/env >/dev/null 2>&1 || true
  rm -rf run/env
  tests/env/up.sh run/env
fi
# shellcheck disable=SC1091
. run/env/env.sh

cat > run/sbxlet.json <<JSON
{
  "http_addr": ":8080",
  "state_dir": "$top/run/sbxlet",
  "containerd_address": "$CONTAINERD_SOCK",
  "containerd_namespace": "sandboxd",
  "runtime": "runsc",
  "runtime_binary": "$top/tools/runsc-host",
  "runtime_root": "$RUNSC_ROOT",
  "registry_mirrors": {"docker.io": ["http://$REGISTRY_ADDR"]}
}
JSON

start() {
  local name=$1 port=$2
  shift 2
  if [ -f "run/$name.pid" ] && kill -0 "$(cat "run/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "run/$name.pid"))"
    return
  fi
  "bin/$name" "$@" >>"run/$name.log" 2>&1 &
  echo $! > "run/$name.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      echo "$name up on :$port (pid $(cat "run/$name.pid"), log run/$name.log)"
      return
    fi
    if ! kill -0 "$(cat "run/$name.pid")" 2>/dev/null; then
      echo "$name failed to start; last log lines:" >&2
      tail -5 "run/$name.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  echo "$name did not answer on :$port" >&2
  exit 1
}
start sbxlet 8080 -c run/sbxlet.json
start sandboxd-o 8082
cat <<TXT
sbxlet's shared secret: run/sbxlet/secret. Try:
  curl -s -H "Authorization: Bearer \$(cat run/sbxlet/secret)" localhost:8080/v1/sandboxes -d \\
    '{"id":"hello","containers":[{"name":"web","image":"alpine:3.20","args":["sh","-c","echo hello; sleep 600"],"resource":{"cpu":"250m","memory":"64Mi"}}]}'
TXT
