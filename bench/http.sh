#!/usr/bin/env bash
# make bench-http: sbxlet vs nginx (1 worker) on GET /healthz, loopback,
# wrk with 1 thread, 64 keep-alive connections, 10 s each. Prints requests/s
# and p99 for both and their ratio. Both servers log every request to a file
# (nginx's access_log, sbxlet's JSON access log), so neither gets a free pass.
#
#   DURATION=10s CONNECTIONS=64 bench/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
work=$(mktemp -d /tmp/sbx-bench-http.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${bench_bridge:-}" ] && tools/net-cleanup.sh "$bench_bridge"
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
run_wrk() {
  local port=$1 out=$2
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port/healthz" > "$out"
}
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
p99_us() {
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000}}' "$1"
}

# nginx: one worker, a location answering {"ok":true}.
nginx_port=$(free_port)
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx/logs/access.log;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /healthz {
      default_type application/json;
      return 200 '{"ok":true}';
    }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)

sbx_port=$(free_port)
# Its own state, bridge, subnet and conflist: the host's are never touched.
bench_bridge=sbxbh$(( $$ % 100000 ))
bin/sbxlet --http-addr "127.0.0.1:$sbx_port" --state-dir "$work/sbxlet" --bridge-interface "$bench_bridge" \
  --subnet-cidr 10.233.0.0/24 --cni-conf-path "$work/cni.conflist" --netns-prefix "$bench_bridge-" \
  --containerd-address "$work/no-containerd.sock" 2> "$work/sbxlet.log" &
pids+=($!)

wait_port "$nginx_port"
wait_port "$sbx_port"

echo "warming up..."
wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$nginx_port/healthz" >/dev/null
wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$sbx_port/healthz" >/dev/null

run_wrk "$nginx_port" "$work/nginx.wrk"
run_wrk "$sbx_port" "$work/sbxlet.wrk"

n_rps=$(rps "$work/nginx.wrk"); s_rps=$(rps "$work/sbxlet.wrk")
n_p99=$(p99_us "$work/nginx.wrk"); s_p99=$(p99_us "$work/sbxlet.wrk")
lines=$(grep -c '"msg":"access"' "$work/sbxlet.log" || true)

printf '\nGET /healthz, wrk -t1 -c%s -d%s, loopback, %s cores\n' "$CONNECTIONS" "$DURATION" "$(nproc)"
printf '%-8s %14s %12s\n' server "requests/s" "p99 (us)"
printf '%-8s %14s %12s\n' nginx "$n_rps" "$n_p99"
printf '%-8s %14s %12s\n' sbxlet "$s_rps" "$s_p99"
awk -v s="$s_rps" -v n="$n_rps" -v sp="$s_p99" -v np="$n_p99" \
  'BEGIN { printf "ratio sbxlet/nginx: requests/s %.2fx, p99 %.2fx (lower is better)\n", s/n, sp/np }'
echo "sbxlet access-log lines written: $lines"
