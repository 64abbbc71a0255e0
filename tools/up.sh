#!/usr/bin/env bash
# make up: starts sbxlet (:8080) and sandboxd-o (:8082) in the background on
# their embedded defaults. PIDs and logs under run/ in the checkout;
# `make down` stops them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p run
start() {
  local name=$1 port=$2
  if [ -f "run/$name.pid" ] && kill -0 "$(cat "run/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "run/$name.pid"))"
    return
  fi
  "bin/$name" >>"run/$name.log" 2>&1 &
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
start sbxlet 8080
start sandboxd-o 8082
