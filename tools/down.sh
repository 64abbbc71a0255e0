#!/usr/bin/env bash
# make down: stops what `make up` started, by PID (SIGTERM, graceful drain),
# then the private containerd and registry (tests/env/down.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
# The whole system goes away, containerd included: delete the sandboxes first
# so their network namespaces, mounts and cgroups are released by sbxlet.
if [ -f run/sbxlet.pid ] && kill -0 "$(cat run/sbxlet.pid)" 2>/dev/null && [ -f run/sbxlet/secret ]; then
  auth="Authorization: Bearer $(cat run/sbxlet/secret)"
  ids=$(curl -s -H "$auth" "http://127.0.0.1:8080/v1/sandboxes?limit=200" | grep -o '"id":"[^"]*","phase"' | cut -d'"' -f4)
  for id in $ids; do
    curl -s -o /dev/null -X DELETE -H "$auth" "http://127.0.0.1:8080/v1/sandboxes/$id" && echo "sandbox $id deleted"
  done
fi
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
# The network sbxlet left for its sandboxes (kept across its restarts).
tools/net-cleanup.sh sbx-br0
if [ -d run/env ]; then
  tests/env/down.sh run/env && echo "containerd and registry stopped"
fi
