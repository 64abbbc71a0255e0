#!/usr/bin/env bash
# make down: stops what `make up` started, by PID (SIGTERM, graceful drain).
set -uo pipefail
cd "$(dirname "$0")/.."
for name in sandboxd-o sbxlet; do
  f="run/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    echo "$name stopped (pid $pid)"
  fi
  rm -f "$f"
done
