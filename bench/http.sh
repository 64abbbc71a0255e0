#!/usr/bin/env bash
# make bench-http: sbxlet vs nginx (1 worker), loopback, wrk with 1 thread,
# 10 s per run, at 64 and at 256 keep-alive connections:
#   GET /healthz
#   GET /v1/sandboxes/{id} with HOLLOW (10,000) sandboxes on the node
#     (runtime "sim": a hollow node, so the lookup and the JSON are the real
#     ones without containerd; nginx serves the same body, byte for byte,
#     from a file).
# Prints requests/s and p99 for both and their ratios, and sbxlet's worst
# event-loop stall over the runs. Both servers log every request to a file
# (nginx's access_log, sbxlet's JSON access log), so neither gets a free
# pass. Appends a markdown section to $BENCH_MD when set (make bench).
#
#   DURATION=10s HOLLOW=10000 bench/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
HOLLOW=${HOLLOW:-10000}
SECRET=bench-http-secret-0123456789
AUTH="Authorization: Bearer $SECRET"
work=$(mktemp -d /tmp/sbx-bench-http.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A port nobody listens on (bash's /dev/tcp: connect fails → free).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2
  exit 1
}

wait_port() {
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "server on port $1 did not come up" >&2
  exit 1
}

# wrk prints "Requests/sec: N" and, with --latency, a "99%  X.XXms" line.
run_wrk() {  # run_wrk PORT PATH CONNECTIONS OUT
  wrk -t1 -c"$3" -d"$DURATION" --latency -H "$AUTH" "http://127.0.0.1:$1$2" > "$4"
}
rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' "$1"; }
p99_us() {
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000}}' "$1"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1"; }

# sbxlet: a hollow node with HOLLOW sandboxes.
sbx_port=$(free_port)
bin/sbxlet --runtime sim --http-addr "127.0.0.1:$sbx_port" --state-dir "$work/sbxlet" --shared-secret "$SECRET" \
  --sim-start-latency 1ms --sim-cpu 1000 --sim-memory 4Ti --cni-conf-path "$work/none.conflist" \
  2> "$work/sbxlet.log" &
pids+=($!)
wait_port "$sbx_port"
echo "creating $HOLLOW hollow sandboxes..."
bin/loadgen --api sbxlet --target "127.0.0.1:$sbx_port" --secret "$SECRET" --mix create=1 \
  --count "$HOLLOW" --concurrency 64 --wait-running --id-prefix hb- > "$work/preload.out" 2>&1 ||
  { cat "$work/preload.out" >&2; exit 1; }
sid=hb-$((HOLLOW / 2))
curl -fsS -H "$AUTH" "http://127.0.0.1:$sbx_port/v1/sandboxes/$sid" > "$work/sandbox.json" ||
  { echo "GET $sid failed" >&2; exit 1; }

# nginx: one worker; /healthz answers {"ok":true}; the sandbox path serves
# the same JSON sbxlet answered.
nginx_port=$(free_port)
mkdir -p "$work/nginx/logs" "$work/nginx/www/v1/sandboxes"
cp "$work/sandbox.json" "$work/nginx/www/v1/sandboxes/$sid"
# nginx's worker runs as an unprivileged user: it must be able to read them.
chmod a+rx "$work" "$work/nginx" "$work/nginx/www" "$work/nginx/www/v1" "$work/nginx/www/v1/sandboxes"
chmod a+r "$work/nginx/www/v1/sandboxes/$sid"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx/logs/access.log;
  server {
    listen 127.0.0.1:$nginx_port backlog=4096;
    root $work/nginx/www;
    default_type application/json;
    location = /healthz {
      return 200 '{"ok":true}';
    }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
wait_port "$nginx_port"

echo "warming up..."
wrk -t1 -c64 -d2s "http://127.0.0.1:$nginx_port/healthz" >/dev/null
wrk -t1 -c64 -d2s -H "$AUTH" "http://127.0.0.1:$sbx_port/healthz" >/dev/null
curl -s -H "$AUTH" "http://127.0.0.1:$sbx_port/v1/node/loop?reset=1" >/dev/null

rows=()
http_errors=0
for path in /healthz "/v1/sandboxes/$sid"; do
  for c in 64 256; do
    run_wrk "$nginx_port" "$path" "$c" "$work/n.wrk"
    run_wrk "$sbx_port" "$path" "$c" "$work/s.wrk"
    for srv in n s; do
      errs=$(errors "$work/$srv.wrk")
      [ -z "$errs" ] || { echo "wrk against $([ $srv = n ] && echo nginx || echo sbxlet) ($path, $c connections): $errs" >&2; http_errors=1; }
    done
    label=$path
    [ "$path" = /healthz ] || label="/v1/sandboxes/{id}"
    rows+=("$(awk -v l="GET $label" -v c="$c" -v nr="$(rps "$work/n.wrk")" -v sr="$(rps "$work/s.wrk")" \
      -v np="$(p99_us "$work/n.wrk")" -v sp="$(p99_us "$work/s.wrk")" \
      'BEGIN { printf "| %s | %d | %d | %d | **%.2fx** | %.0f | %.0f | %.2fx |", l, c, nr, sr, sr/nr, np, sp, sp/np }')")
  done
done
loopjson=$(curl -s -H "$AUTH" "http://127.0.0.1:$sbx_port/v1/node/loop")
stall=$(echo "$loopjson" | grep -o '"max_stall_us":[0-9]*' | cut -d: -f2)
stall_cpu=$(echo "$loopjson" | grep -o '"max_stall_cpu_us":[0-9]*' | cut -d: -f2)
over=$(echo "$loopjson" | grep -o '"turns_over_5ms":[0-9]*' | cut -d: -f2)
over_cpu=$(echo "$loopjson" | grep -o '"turns_over_5ms_cpu":[0-9]*' | cut -d: -f2)
turns=$(echo "$loopjson" | grep -o '"turns":[0-9]*' | cut -d: -f2)
lines=$(grep -c '"msg":"access"' "$work/sbxlet.log" || true)
body=$(wc -c < "$work/sandbox.json")

{
  echo "### HTTP: sbxlet vs nginx (1 worker)"
  echo
  echo "wrk -t1, $DURATION per run, loopback, $(nproc) cores; sbxlet is a hollow node holding $HOLLOW sandboxes;"
  echo "the sandbox body is $body bytes (nginx serves the same bytes from a file). Both log every request."
  echo
  echo "| request | connections | nginx req/s | sbxlet req/s | ratio | nginx p99 µs | sbxlet p99 µs | p99 ratio |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "sbxlet's worst event-loop turn over these runs: $((stall / 1000)).$(( (stall % 1000) / 100 )) ms wall,"
  echo "$((stall_cpu / 1000)).$(( (stall_cpu % 1000) / 100 )) ms of loop-thread CPU (target < 5 ms); turns over 5 ms: $over by wall, $over_cpu by CPU, of $turns"
  echo "(wrk, nginx and sbxlet share the $(nproc) cores: a wall turn far above its CPU is preemption);"
  echo "access-log lines written: $lines."
  echo
} > "$work/section.md"
cat "$work/section.md"
[ -n "${BENCH_MD:-}" ] && cat "$work/section.md" >> "$BENCH_MD"
exit "$http_errors"
